package pipeline_test

import "github.com/healthlake-cdc/healthlake-cdc/pkg/clock/clocktest"

// fakeClock is the shared fake clock; rig.advance walks its timers in deadline order.
type fakeClock = clocktest.Fake

var newFakeClock = clocktest.New

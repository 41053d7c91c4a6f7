// Command consumer is the healthlake-cdc consumer: it reads HealthLake CloudTrail hints
// from Kinesis and emits FHIR change events to an EventBridge bus.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "consumer: not built yet")
	os.Exit(2)
}

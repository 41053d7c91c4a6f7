package pipeline

import "github.com/healthlake-cdc/healthlake-cdc/pkg/retry"

// backoff is the retry policy of the pipeline: full jitter from MinBackoff doubling up to
// MaxBackoff, on the pipeline's clock. The reports (report, flushRejects) wait on it until ctx
// ends or its deadline is too near; the scheduler draws a failed key's next run from it.
func (p *Pipeline) backoff() retry.Policy {
	return retry.Policy{Base: p.cfg.MinBackoff, Max: p.cfg.MaxBackoff, Clock: p.cfg.Clock}
}

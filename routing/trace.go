package routing

import "github.com/omnigate/omnigate/core/telemetry"

// tracer starts routing's span "routing decide": one transcript entry
// routed (queue, assignment, SLA timers). Tracing off, it costs one atomic
// load.
var tracer = telemetry.NewTracer("github.com/omnigate/omnigate/routing")

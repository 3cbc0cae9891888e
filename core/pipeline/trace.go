package pipeline

import "github.com/omnigate/omnigate/core/telemetry"

// tracer starts the pipeline's spans: "pipeline inbound" for a customer's
// message, "pipeline outbound" for what a desk sent (a reply, a command).
// Tracing off, each costs one atomic load.
var tracer = telemetry.NewTracer("github.com/omnigate/omnigate/core/pipeline")

package conntest

import (
	"context"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/workflow"
)

// The greeter is the smallest real workflow: one activity. Connection, metrics and tracing
// tests run it and look for these names in spans and metric labels.
const (
	GreetActivity     = "greet"
	GreetWorkflowName = "greetWorkflow"
)

func greet(_ context.Context, name string) (string, error) { return "hello " + name, nil }

func greetWorkflow(ctx workflow.Context, name string) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	var out string
	err := workflow.ExecuteActivity(ctx, GreetActivity, name).Get(ctx, &out)
	return out, err
}

// Registry is a worker, or the SDK's test workflow environment.
type Registry interface {
	RegisterWorkflowWithOptions(w interface{}, options workflow.RegisterOptions)
	RegisterActivityWithOptions(a interface{}, options activity.RegisterOptions)
}

// RegisterGreeter registers the greeter's workflow and activity under their names; start it
// with GreetWorkflowName.
func RegisterGreeter(r Registry) {
	r.RegisterWorkflowWithOptions(greetWorkflow, workflow.RegisterOptions{Name: GreetWorkflowName})
	r.RegisterActivityWithOptions(greet, activity.RegisterOptions{Name: GreetActivity})
}

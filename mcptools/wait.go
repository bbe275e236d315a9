package mcptools

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"taskhub/broadcaster"
	"taskhub/broadcaster/tasklog"
	"taskhub/tasks"

	"github.com/mark3labs/mcp-go/mcp"
)

// DefaultWaitSeconds is wait_for_events' timeout_seconds when the call gives none.
const DefaultWaitSeconds = 30

// waitTool is wait_for_events, whose result is output (that of list_events).
func (s *Server) waitTool(output map[string]any) tool {
	maxWait := int(broadcaster.MaxWait.Seconds())
	return tool{newTool("wait_for_events", "Wait for events",
		fmt.Sprintf("Wait until an event that matches the filters is committed after seq after, and return it (with any others, up to limit); "+
			"or, when timeout_seconds (1 to %d, default %d) pass without one, return no events and last_seq, where the log ends then. "+
			"For example: wait until task 7 is done (task_id 7, status [\"done\"]), or for new work in a project (project, types [\"task_created\"]). "+
			"Omit after to wait for events from now on; pass last_seq back as after to wait again without missing any.", maxWait, DefaultWaitSeconds),
		hints{readOnly: true, idempotent: true}, obj(with(eventFilterArgs(), map[string]any{
			"after":           map[string]any{"type": "integer", "minimum": 0, "description": "only events after this seq; default: where the log ends now"},
			"limit":           map[string]any{"type": "integer", "minimum": 1, "maximum": tasks.MaxEventsLimit, "description": fmt.Sprintf("at most this many, default %d", tasks.DefaultEventsLimit)},
			"timeout_seconds": map[string]any{"type": "integer", "minimum": 1, "maximum": maxWait, "description": fmt.Sprintf("how long to wait for a first event, default %d", DefaultWaitSeconds)},
		})), output), s.waitForEvents}
}

func (s *Server) waitForEvents(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	a, err := argsOf(req)
	if err != nil {
		return s.toolError("wait_for_events", err), nil
	}
	var after int64
	limit, timeout := tasks.DefaultEventsLimit, DefaultWaitSeconds
	afterSet, afterErr := get(a, "after", &after)
	_, limitErr := get(a, "limit", &limit)
	_, timeoutErr := get(a, "timeout_seconds", &timeout)
	f, err := eventFilter(a)
	if err := firstError([]error{afterErr, limitErr, timeoutErr, err}); err != nil {
		return s.toolError("wait_for_events", err), nil
	}
	if maxWait := int(broadcaster.MaxWait.Seconds()); timeout < 1 || timeout > maxWait {
		return s.toolError("wait_for_events", tasks.Errorf(tasks.EInvalid, "timeout_seconds", "timeout_seconds must be 1 to %d, got %d", maxWait, timeout)), nil
	}
	if !afterSet {
		// Where the log ends: EventsFor's seq to go on from, past every event.
		if _, after, err = s.svc.EventsFor(ctx, tasks.EventQuery{After: math.MaxInt64, Limit: 1}); err != nil {
			return s.toolError("wait_for_events", err), nil
		}
	}
	owner := tasks.ActorFrom(s.actor(ctx)).Name
	events, last, err := tasklog.Wait(ctx, s.svc, s.waits, tasklog.WaitRequest{
		Owner: owner, After: after, Filter: f, Limit: limit, Timeout: time.Duration(timeout) * time.Second,
	})
	switch {
	case ctx.Err() != nil:
		return mcp.NewToolResultError("cancelled: the call ended before an event came"), nil
	case errors.Is(err, broadcaster.ErrTooManyWaits):
		return mcp.NewToolResultError("rate_limited: " + err.Error()), nil
	case err != nil:
		return s.toolError("wait_for_events", err), nil
	}
	var text string
	if len(events) == 0 {
		text = fmt.Sprintf("No matching event after seq %d within %ds; last_seq %d: pass it as after to wait again", after, timeout, last)
	} else {
		text = fmt.Sprintf("%d events after seq %d: %s; last_seq %d", len(events), after, describe(events), last)
	}
	return mcp.NewToolResultStructured(map[string]any{"events": events, "last_seq": last}, text), nil
}

// describe names each event by its seq, type and task, for the text of a result.
func describe(events []tasks.Record) string {
	parts := make([]string, len(events))
	for i, e := range events {
		parts[i] = fmt.Sprintf("%d %s", e.Seq, e.Type)
		if e.TaskID != 0 {
			parts[i] += fmt.Sprintf(" of task %d", e.TaskID)
		}
	}
	return strings.Join(parts, ", ")
}

package mcptools

import (
	"context"
	"fmt"

	"taskhub/tasks"

	"github.com/mark3labs/mcp-go/mcp"
)

// agentTools are the tools of an agent at work on a claimed task: keeping its lease,
// reporting progress, handing the task back.
func (s *Server) agentTools() []tool {
	return []tool{
		{newTool("heartbeat_task", "Renew task lease",
			"Renew your lease on a task you claimed, by the claim's lease length from now, before lease_expires_at: when a lease runs out, the task goes back to todo for another agent. Any change you make to the task renews it too. A renewal is no new version of the task.",
			hints{}, obj(map[string]any{"task_id": id("the task you hold")}, "task_id"), taskSchema()), s.heartbeatTask},
		{newTool("release_task", "Release task",
			"Hand back a task you hold: it goes back to todo, unassigned, and its lease ends, so another agent can claim it. Leave a note for whoever takes it next.",
			hints{idempotent: true}, obj(map[string]any{
				"task_id": id("the task you hold"),
				"note":    str("what the next agent should know; added to the task's notes", tasks.MaxNoteText),
			}, "task_id"), taskSchema()), s.releaseTask},
		{newTool("report_progress", "Report progress",
			"Say how far your work on a task you hold is: progress from 0 to 100 and a short message (which replaces the last one). Boards show it live; it also renews your lease.",
			hints{idempotent: true}, obj(map[string]any{
				"task_id":  id("the task you hold"),
				"progress": map[string]any{"type": "integer", "minimum": 0, "maximum": tasks.MaxProgress, "description": "percent done, 0 to 100"},
				"message":  str("what you are doing now, in a line", tasks.MaxProgressMessage),
			}, "task_id", "progress"), taskSchema()), s.reportProgress},
	}
}

// leaseSchema is the claim_task argument lease_seconds.
func leaseSchema() map[string]any {
	return map[string]any{"type": "integer", "minimum": tasks.MinLeaseSeconds, "maximum": tasks.MaxLeaseSeconds,
		"description": "how long your claim lasts without a renewal, in seconds (60 to 86400); default the server's --claim-lease"}
}

func (s *Server) heartbeatTask(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	a, err := argsOf(req)
	if err != nil {
		return s.toolError("heartbeat_task", err), nil
	}
	var id int64
	if _, err := get(a, "task_id", &id); err != nil {
		return s.toolError("heartbeat_task", err), nil
	}
	t, err := s.svc.Heartbeat(s.actor(ctx), id)
	if err != nil {
		return s.toolError("heartbeat_task", withField(err, "task_id")), nil
	}
	return taskResult("Renewed the lease on", t), nil
}

func (s *Server) releaseTask(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	a, err := argsOf(req)
	if err != nil {
		return s.toolError("release_task", err), nil
	}
	var id int64
	var note string
	_, idErr := get(a, "task_id", &id)
	_, noteErr := get(a, "note", &note)
	if err := firstError([]error{idErr, noteErr}); err != nil {
		return s.toolError("release_task", err), nil
	}
	t, err := s.svc.Release(s.actor(ctx), id, note)
	if err != nil {
		return s.toolError("release_task", withField(err, "task_id")), nil
	}
	return taskResult("Released", t), nil
}

func (s *Server) reportProgress(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	a, err := argsOf(req)
	if err != nil {
		return s.toolError("report_progress", err), nil
	}
	var id int64
	var progress int
	var message string
	_, idErr := get(a, "task_id", &id)
	_, progressErr := get(a, "progress", &progress)
	_, messageErr := get(a, "message", &message)
	if err := firstError([]error{idErr, progressErr, messageErr}); err != nil {
		return s.toolError("report_progress", err), nil
	}
	// The input schema bounds progress and message as the Service does, so a
	// refusal here is about the task, not the arguments.
	t, err := s.svc.ReportProgress(s.actor(ctx), id, progress, message)
	if err != nil {
		return s.toolError("report_progress", withField(err, "task_id")), nil
	}
	return taskResult(fmt.Sprintf("Progress %d%% on", t.Progress), t), nil
}

package mcptools

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"taskhub/broadcaster"
	"taskhub/broadcaster/tasklog"
	"taskhub/tasks"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

type tool struct {
	tool    mcp.Tool
	handler server.ToolHandlerFunc
}

// hints are a tool's annotations. Nothing TaskHub does reaches outside the hub, so
// no tool is open-world. An update overwrites values that the event log keeps only
// until --event-retention prunes it, so it is destructive like a delete.
type hints struct{ readOnly, destructive, idempotent bool }

func newTool(name, title, desc string, h hints, input, output map[string]any) mcp.Tool {
	t := mcp.NewTool(name,
		mcp.WithDescription(desc),
		mcp.WithTitleAnnotation(title),
		mcp.WithReadOnlyHintAnnotation(h.readOnly),
		mcp.WithDestructiveHintAnnotation(h.destructive),
		mcp.WithIdempotentHintAnnotation(h.idempotent),
		mcp.WithOpenWorldHintAnnotation(false),
		mcp.WithRawInputSchema(raw(input)),
		mcp.WithRawOutputSchema(raw(output)),
	)
	t.InputSchema = mcp.ToolInputSchema{} // NewTool's default; the raw schema replaces it
	return t
}

func (s *Server) tools() []tool {
	create := taskFields()
	update := taskFields()
	update["task_id"] = id("the task to change")
	update["expected_version"] = id("the version you last saw; the update fails if the task has changed since")
	update["parent_id"] = nullable(update["parent_id"].(map[string]any), "null clears it: the task is no subtask any more")
	update["due_at"] = nullable(update["due_at"].(map[string]any), "null clears it: no due date")
	listOutput := result(map[string]any{
		"tasks":       map[string]any{"type": "array", "items": taskSchema()},
		"next_cursor": map[string]any{"type": "string", "description": "pass as cursor for the next page; empty on the last"},
	}, "tasks", "next_cursor")
	eventsOutput := result(map[string]any{
		"events":   map[string]any{"type": "array", "items": eventSchema()},
		"last_seq": map[string]any{"type": "integer", "description": "pass as after next time"},
	}, "events", "last_seq")
	deleteOutput := result(map[string]any{
		"task_id": map[string]any{"type": "integer"},
		"deleted": map[string]any{"type": "boolean"},
	}, "task_id", "deleted")

	list := []tool{
		{newTool("create_task", "Create task",
			"Create a task. Only title is required; status defaults to todo and priority to medium. Set project to group it with its repository's tasks.",
			hints{}, obj(create, "title"), taskSchema()), s.createTask},
		{newTool("get_task", "Get task", "Get one task by id.",
			hints{readOnly: true, idempotent: true}, obj(map[string]any{"task_id": id("the task's id")}, "task_id"), taskSchema()), s.getTask},
		{newTool("list_tasks", "List tasks",
			"List tasks, oldest first, filtered by any of the arguments (combined with AND). Pages: pass next_cursor back as cursor.",
			hints{readOnly: true, idempotent: true}, obj(map[string]any{
				"status":    map[string]any{"type": "array", "items": enum(tasks.Statuses, ""), "description": "any of these statuses"},
				"assignee":  str("exactly this assignee", tasks.MaxAssignee),
				"project":   str("exactly this project", tasks.MaxProject),
				"label":     str("tasks with this label", tasks.MaxLabel),
				"parent_id": id("subtasks of this task"),
				"q":         str("text in the title or description", tasks.MaxTextQuery),
				"limit":     map[string]any{"type": "integer", "minimum": 1, "maximum": tasks.MaxListLimit, "description": fmt.Sprintf("page size, default %d", tasks.DefaultListLimit)},
				"cursor":    str("next_cursor of the previous page", 0),
			}), listOutput), s.listTasks},
		{newTool("update_task", "Update task",
			"Change the given fields of a task; fields not given stay as they are. null clears parent_id or due_at. With expected_version the update fails if the task has changed since you read it.",
			hints{destructive: true, idempotent: true}, obj(update, "task_id"), taskSchema()), s.updateTask},
		{newTool("update_task_status", "Update task status",
			"Move a task to another status (review, blocked, done, ...), with an optional note saying why; the note is recorded on the change's event.",
			hints{idempotent: true}, obj(map[string]any{
				"task_id": id("the task to move"),
				"status":  enum(tasks.Statuses, "the new status"),
				"note":    str("why, in a sentence or two", tasks.MaxNote),
			}, "task_id", "status"), taskSchema()), s.updateTaskStatus},
		{newTool("delete_task", "Delete task",
			"Delete a task for good. A task that others depend on, or that has subtasks, is not deleted. Prefer status cancelled to keep the record.",
			hints{destructive: true, idempotent: true}, obj(map[string]any{
				"task_id":          id("the task to delete"),
				"expected_version": id("the version you last saw; the delete fails if the task has changed since"),
			}, "task_id"), deleteOutput), s.deleteTask},
		{newTool("claim_task", "Claim task",
			"Assign a task to yourself and set it in_progress, atomically: two agents never get the same task. With task_id, claims that todo task (fails if someone else holds it or a dependency is not done). Without, claims the next ready task (todo, unassigned, all depends_on done) by priority then age, within project and label if given. The claim holds a lease (lease_expires_at): renew it with heartbeat_task, or by any change you make, or the task goes back to todo when it runs out.",
			hints{}, obj(map[string]any{
				"task_id":       id("the task to claim; omit to claim the next ready one"),
				"project":       str("claim only within this project", tasks.MaxProject),
				"label":         str("claim only tasks with this label", tasks.MaxLabel),
				"lease_seconds": leaseSchema(),
			}), taskSchema()), s.claimTask},
		{newTool("list_events", "List events",
			"List the event log after seq after, oldest first: every change, who made it and through which door. Poll with after = the last_seq of the previous call.",
			hints{readOnly: true, idempotent: true}, obj(with(eventFilterArgs(), map[string]any{
				"after": map[string]any{"type": "integer", "minimum": 0, "description": "only events after this seq; default 0"},
				"limit": map[string]any{"type": "integer", "minimum": 1, "maximum": tasks.MaxEventsLimit, "description": fmt.Sprintf("at most this many, default %d", tasks.DefaultEventsLimit)},
			})), eventsOutput), s.listEvents},
	}
	if s.waits != nil {
		list = append(list, s.waitTool(eventsOutput))
	}
	return list
}

// args are a call's arguments, each still JSON, so that absent and null differ.
type args map[string]json.RawMessage

func argsOf(req mcp.CallToolRequest) (args, error) {
	b, err := json.Marshal(req.GetRawArguments())
	if err != nil {
		return nil, tasks.Errorf(tasks.EInvalid, "", "arguments must be an object")
	}
	a := args{}
	if bytes.Equal(b, []byte("null")) {
		return a, nil
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, tasks.Errorf(tasks.EInvalid, "", "arguments must be an object")
	}
	return a, nil
}

// get decodes the argument name into v, reporting whether it was given.
func get[T any](a args, name string, v *T) (bool, error) { return decode(a, name, v) }

// decode is get for a v of any pointer type.
func decode(a args, name string, v any) (bool, error) {
	b, ok := a[name]
	if !ok {
		return false, nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return true, tasks.Errorf(tasks.EInvalid, name, "%s has the wrong type: %s", name, b)
	}
	return true, nil
}

func field[T any](a args, name string, f *tasks.Field[T]) error {
	ok, err := get(a, name, &f.Value)
	f.Set = ok
	return err
}

// update reads the task fields among a into an Update. Statuses and priorities are
// parsed by the domain, so the messages are the REST API's.
func update(a args) (tasks.Update, error) {
	var u tasks.Update
	var status, priority tasks.Field[string]
	var due tasks.Field[*string]
	errs := []error{
		field(a, "title", &u.Title), field(a, "description", &u.Description),
		field(a, "status", &status), field(a, "priority", &priority),
		field(a, "assignee", &u.Assignee), field(a, "project", &u.Project),
		field(a, "labels", &u.Labels), field(a, "parent_id", &u.ParentID),
		field(a, "depends_on", &u.DependsOn), field(a, "due_at", &due),
	}
	if err := firstError(errs); err != nil {
		return u, err
	}
	if status.Set {
		st, err := tasks.ParseStatus("status", status.Value)
		if err != nil {
			return u, err
		}
		u.Status = tasks.Value(st)
	}
	if priority.Set {
		p, err := tasks.ParsePriority("priority", priority.Value)
		if err != nil {
			return u, err
		}
		u.Priority = tasks.Value(p)
	}
	if due.Set {
		u.DueAt.Set = true
		if due.Value != nil {
			var t tasks.Time
			if err := t.UnmarshalJSON(a["due_at"]); err != nil {
				return u, tasks.Errorf(tasks.EInvalid, "due_at", "due_at must be an RFC 3339 time, got %s", a["due_at"])
			}
			u.DueAt.Value = &t
		}
	}
	if u.Labels.Set && u.Labels.Value == nil {
		u.Labels.Value = []string{}
	}
	if u.DependsOn.Set && u.DependsOn.Value == nil {
		u.DependsOn.Value = []int64{}
	}
	return u, nil
}

func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func asError(err error) (*tasks.Error, bool) { return errors.AsType[*tasks.Error](err) }

// taskResult is a task as a tool's result: structured, with a line of text.
func taskResult(verb string, t *tasks.Task) *mcp.CallToolResult {
	text := fmt.Sprintf("%s task %d (version %d): %q, %s, priority %s", verb, t.ID, t.Version, t.Title, t.Status, t.Priority)
	if t.Assignee != "" {
		text += ", assigned to " + t.Assignee
	}
	if t.Project != "" {
		text += ", project " + t.Project
	}
	if t.LeaseExpiresAt != nil {
		text += ", lease runs out at " + t.LeaseExpiresAt.String()
	}
	return mcp.NewToolResultStructured(t, text)
}

func (s *Server) createTask(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	a, err := argsOf(req)
	if err != nil {
		return s.toolError("create_task", err), nil
	}
	u, err := update(a)
	if err != nil {
		return s.toolError("create_task", err), nil
	}
	t, err := s.svc.Create(s.actor(ctx), u)
	if err != nil {
		return s.toolError("create_task", err), nil
	}
	return taskResult("Created", t), nil
}

func (s *Server) getTask(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	a, err := argsOf(req)
	if err != nil {
		return s.toolError("get_task", err), nil
	}
	var id int64
	if _, err := get(a, "task_id", &id); err != nil {
		return s.toolError("get_task", err), nil
	}
	t, err := s.svc.Get(ctx, id)
	if err != nil {
		return s.toolError("get_task", withField(err, "task_id")), nil
	}
	return taskResult("Task", t), nil
}

// withField names field in a not-found error, which the store reports without one.
func withField(err error, field string) error {
	if e, ok := asError(err); ok && e.Field == "" && e.Code == tasks.ENotFound {
		return &tasks.Error{Code: e.Code, Message: e.Message, Field: field}
	}
	return err
}

func (s *Server) listTasks(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	a, err := argsOf(req)
	if err != nil {
		return s.toolError("list_tasks", err), nil
	}
	f := tasks.Filter{Limit: tasks.DefaultListLimit}
	var statuses []string
	var parent int64
	errs := []error{}
	_, err = get(a, "status", &statuses)
	errs = append(errs, err)
	for _, st := range statuses {
		v, err := tasks.ParseStatus("status", st)
		errs = append(errs, err)
		f.Statuses = append(f.Statuses, v)
	}
	for name, into := range map[string]*string{"assignee": &f.Assignee, "project": &f.Project, "label": &f.Label, "q": &f.Text, "cursor": &f.Cursor} {
		_, err := get(a, name, into)
		errs = append(errs, err)
	}
	_, err = get(a, "limit", &f.Limit)
	errs = append(errs, err)
	if ok, err := get(a, "parent_id", &parent); ok {
		f.ParentID = &parent
		errs = append(errs, err)
	}
	if err := firstError(errs); err != nil {
		return s.toolError("list_tasks", err), nil
	}
	page, err := s.svc.List(ctx, f)
	if err != nil {
		return s.toolError("list_tasks", err), nil
	}
	ids := make([]string, len(page.Tasks))
	for i, t := range page.Tasks {
		ids[i] = fmt.Sprintf("%d %q (%s)", t.ID, t.Title, t.Status)
	}
	text := fmt.Sprintf("%d tasks", len(page.Tasks))
	if len(ids) > 0 {
		text += ": " + strings.Join(ids, "; ")
	}
	if page.NextCursor != "" {
		text += "; more with cursor " + page.NextCursor
	}
	return mcp.NewToolResultStructured(page, text), nil
}

// idAndVersion reads the task_id and the optional expected_version arguments.
func idAndVersion(a args) (id, version int64, err error) {
	_, idErr := get(a, "task_id", &id)
	_, versionErr := get(a, "expected_version", &version)
	return id, version, firstError([]error{idErr, versionErr})
}

func (s *Server) updateTask(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	a, err := argsOf(req)
	if err != nil {
		return s.toolError("update_task", err), nil
	}
	id, version, err := idAndVersion(a)
	if err != nil {
		return s.toolError("update_task", err), nil
	}
	fields := maps.Clone(a)
	delete(fields, "task_id")
	delete(fields, "expected_version")
	if len(fields) == 0 {
		known := slices.Sorted(maps.Keys(taskFields()))
		return s.toolError("update_task", tasks.Errorf(tasks.EInvalid, "", "give at least one field to change: %s", strings.Join(known, ", "))), nil
	}
	u, err := update(fields)
	if err != nil {
		return s.toolError("update_task", err), nil
	}
	t, err := s.svc.Update(s.actor(ctx), id, version, u)
	if err != nil {
		return s.toolError("update_task", versionField(withField(err, "task_id"))), nil
	}
	return taskResult("Updated", t), nil
}

// versionField names expected_version in a failed precondition.
func versionField(err error) error {
	if e, ok := asError(err); ok && e.Code == tasks.EPreconditionFailed && e.Field == "" {
		return &tasks.Error{Code: e.Code, Message: e.Message + "; get the task again and retry", Field: "expected_version"}
	}
	return err
}

func (s *Server) updateTaskStatus(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	a, err := argsOf(req)
	if err != nil {
		return s.toolError("update_task_status", err), nil
	}
	var id int64
	var status, note string
	errs := []error{}
	_, err = get(a, "task_id", &id)
	errs = append(errs, err)
	_, err = get(a, "status", &status)
	errs = append(errs, err)
	_, err = get(a, "note", &note)
	errs = append(errs, err)
	if err := firstError(errs); err != nil {
		return s.toolError("update_task_status", err), nil
	}
	st, err := tasks.ParseStatus("status", status)
	if err != nil {
		return s.toolError("update_task_status", err), nil
	}
	t, err := s.svc.Update(s.actor(ctx), id, 0, tasks.Update{Status: tasks.Value(st), Note: strings.TrimSpace(note)})
	if err != nil {
		return s.toolError("update_task_status", withField(err, "task_id")), nil
	}
	return taskResult("Moved", t), nil
}

func (s *Server) deleteTask(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	a, err := argsOf(req)
	if err != nil {
		return s.toolError("delete_task", err), nil
	}
	id, version, err := idAndVersion(a)
	if err != nil {
		return s.toolError("delete_task", err), nil
	}
	if err := s.svc.Delete(s.actor(ctx), id, version); err != nil {
		err = versionField(withField(err, "task_id"))
		if e, ok := asError(err); ok && e.Code == tasks.EConflict && e.Field == "" {
			err = &tasks.Error{Code: e.Code, Message: e.Message, Field: "task_id"}
		}
		return s.toolError("delete_task", err), nil
	}
	return mcp.NewToolResultStructured(map[string]any{"task_id": id, "deleted": true}, fmt.Sprintf("Deleted task %d", id)), nil
}

func (s *Server) claimTask(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	a, err := argsOf(req)
	if err != nil {
		return s.toolError("claim_task", err), nil
	}
	var c tasks.ClaimRequest
	errs := []error{}
	_, err = get(a, "task_id", &c.TaskID)
	errs = append(errs, err)
	_, err = get(a, "project", &c.Project)
	errs = append(errs, err)
	_, err = get(a, "label", &c.Label)
	errs = append(errs, err)
	errs = append(errs, field(a, "lease_seconds", &c.LeaseSeconds))
	if err := firstError(errs); err != nil {
		return s.toolError("claim_task", err), nil
	}
	t, err := s.svc.Claim(s.actor(ctx), c)
	if err != nil {
		if c.TaskID != 0 {
			err = withField(err, "task_id")
		} else if e, ok := asError(err); ok && e.Code == tasks.ENotFound {
			err = &tasks.Error{Code: e.Code, Message: e.Message + "; try again later, or without project/label", Field: scopeField(c)}
		}
		return s.toolError("claim_task", err), nil
	}
	return taskResult("Claimed", t), nil
}

// scopeField names the filter that left nothing to claim, if any was given.
func scopeField(c tasks.ClaimRequest) string {
	switch {
	case c.Project != "" && c.Label != "":
		return "project, label"
	case c.Project != "":
		return "project"
	case c.Label != "":
		return "label"
	}
	return ""
}

func (s *Server) listEvents(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	a, err := argsOf(req)
	if err != nil {
		return s.toolError("list_events", err), nil
	}
	var after int64
	limit := tasks.DefaultEventsLimit
	_, afterErr := get(a, "after", &after)
	_, limitErr := get(a, "limit", &limit)
	f, err := eventFilter(a)
	if err := firstError([]error{afterErr, limitErr, err}); err != nil {
		return s.toolError("list_events", err), nil
	}
	events, last, err := s.svc.EventsFor(ctx, tasklog.Query(after, f, limit))
	if err != nil {
		return s.toolError("list_events", err), nil
	}
	text := fmt.Sprintf("%d events after seq %d; last_seq %d", len(events), after, last)
	return mcp.NewToolResultStructured(map[string]any{"events": events, "last_seq": last}, text), nil
}

// eventFilter reads the filter arguments of list_events and wait_for_events: the
// stream's filters, one task, project, assignee and label each (empty is none), and
// lists of types, sources and statuses.
func eventFilter(a args) (broadcaster.Filter, error) {
	var f broadcaster.Filter
	var taskID int64
	var project, assignee, label string
	errs := []error{}
	for name, into := range map[string]any{"task_id": &taskID, "project": &project, "assignee": &assignee, "label": &label,
		"types": &f.Types, "source": &f.Sources, "status": &f.Statuses} {
		_, err := decode(a, name, into)
		errs = append(errs, err)
	}
	if taskID != 0 {
		f.TaskIDs = []int64{taskID}
	}
	for _, v := range []struct {
		value string
		into  *[]string
	}{{project, &f.Projects}, {assignee, &f.Assignees}, {label, &f.Labels}} {
		if v.value != "" {
			*v.into = []string{v.value}
		}
	}
	return f, firstError(errs)
}

// eventFilterArgs are the schemas of eventFilter's arguments.
func eventFilterArgs() map[string]any {
	return map[string]any{
		"task_id":  id("only this task's events"),
		"types":    map[string]any{"type": "array", "items": enum(tasks.EventTypes, ""), "description": "only events of these types"},
		"source":   map[string]any{"type": "array", "items": enum(tasks.Sources, ""), "description": "only events that came in through these doors"},
		"status":   map[string]any{"type": "array", "items": enum(tasks.Statuses, ""), "description": "only events of tasks in any of these statuses, before or after the change"},
		"project":  str("only events of tasks in this project, before or after the change", tasks.MaxProject),
		"assignee": str("only events of tasks assigned to this name, before or after the change", tasks.MaxAssignee),
		"label":    str("only events of tasks with this label, before or after the change", tasks.MaxLabel),
	}
}

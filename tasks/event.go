package tasks

import (
	"bytes"
	"context"
	"encoding/json"
)

// EventType says what happened.
type EventType string

// The event types.
const (
	EventTaskCreated EventType = "task_created"
	EventTaskUpdated EventType = "task_updated"
	EventTaskDeleted EventType = "task_deleted"
	EventFileChanged EventType = "file_changed"
)

// EventTypes lists every event type.
var EventTypes = []EventType{EventTaskCreated, EventTaskUpdated, EventTaskDeleted, EventFileChanged}

// Source says through which door a change came in.
type Source string

// The sources of events.
const (
	SourceREST      Source = "rest_api"
	SourceMCP       Source = "mcp_tool"
	SourceFileWatch Source = "file_watch"
	SourceSystem    Source = "system"
)

// Sources lists every source.
var Sources = []Source{SourceREST, SourceMCP, SourceFileWatch, SourceSystem}

// Event is one entry of the durable event log. Seq is strictly increasing across the
// whole log. Task is the task after the change (its last state for task_deleted);
// Changes maps each changed field to its old and new value (task_updated only); Note is
// what the actor said about the change, if anything. A file_changed event has no task:
// File says which file changed and how, where the others have Task.
type Event struct {
	Seq     int64                         `json:"seq"`
	Type    EventType                     `json:"type"`
	TaskID  int64                         `json:"task_id,omitempty"`
	Source  Source                        `json:"source"`
	Actor   string                        `json:"actor"`
	Time    Time                          `json:"time"`
	Task    *Task                         `json:"task,omitempty"`
	Changes map[string][2]json.RawMessage `json:"changes,omitempty"`
	Note    string                        `json:"note,omitempty"`
	File    *FileChange                   `json:"file,omitempty"`
}

// Actor is who makes a change, and through which door.
type Actor struct {
	Source Source
	Name   string
}

type actorKey struct{}

// WithActor returns a context that attributes the changes made with it to a.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor of ctx; changes made without one are the system's.
func ActorFrom(ctx context.Context) Actor {
	if a, ok := ctx.Value(actorKey{}).(Actor); ok {
		return a
	}
	return Actor{Source: SourceSystem, Name: "system"}
}

// diff returns the user-visible fields that differ between old and new, each with its
// old and new JSON value. Bookkeeping fields (version, times, *_by) are left out: every
// update changes them.
func diff(old, new *Task) (map[string][2]json.RawMessage, error) {
	type field struct {
		name     string
		old, new any
	}
	fields := []field{
		{"title", old.Title, new.Title},
		{"description", old.Description, new.Description},
		{"status", old.Status, new.Status},
		{"priority", old.Priority, new.Priority},
		{"assignee", old.Assignee, new.Assignee},
		{"project", old.Project, new.Project},
		{"labels", old.Labels, new.Labels},
		{"parent_id", old.ParentID, new.ParentID},
		{"depends_on", old.DependsOn, new.DependsOn},
		{"due_at", old.DueAt, new.DueAt},
	}
	changes := make(map[string][2]json.RawMessage)
	for _, f := range fields {
		o, err := json.Marshal(f.old)
		if err != nil {
			return nil, err
		}
		n, err := json.Marshal(f.new)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(o, n) {
			changes[f.name] = [2]json.RawMessage{o, n}
		}
	}
	return changes, nil
}

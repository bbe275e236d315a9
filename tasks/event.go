package tasks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
)

// EventType says what happened.
type EventType string

// The event types.
const (
	EventTaskCreated EventType = "task_created"
	EventTaskUpdated EventType = "task_updated"
	EventTaskDeleted EventType = "task_deleted"
	EventFileChanged EventType = "file_changed"
	// EventTaskNoteAdded: a note was added to the task's thread (see Note).
	EventTaskNoteAdded EventType = "task_note_added"
	// EventTaskLeaseRenewed is a claim's lease renewed: no new version of the task,
	// only its lease_expires_at moved on (see Service.Heartbeat).
	EventTaskLeaseRenewed EventType = "task_lease_renewed"

	EventWebhookCreated EventType = "webhook_created"
	EventWebhookUpdated EventType = "webhook_updated"
	EventWebhookDeleted EventType = "webhook_deleted"
)

// EventTypes lists every event type.
var EventTypes = []EventType{EventTaskCreated, EventTaskUpdated, EventTaskDeleted, EventFileChanged, EventTaskNoteAdded,
	EventTaskLeaseRenewed, EventWebhookCreated, EventWebhookUpdated, EventWebhookDeleted}

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

// Event is one entry of the durable event log, as the Service builds it and as its
// JSON reads. Seq is strictly increasing across the whole log. Task is the task after
// the change (its last state for task_deleted); Changes maps each changed field to its
// old and new value (task_updated only); Note is what the actor said about the change,
// if anything. A file_changed event has no task: File says which file changed and how,
// where the others have Task. A task_note_added event carries the note in AddedNote,
// whose JSON is the event's "note"; a task_deleted event says in NotesDeleted how many
// notes went with the task. A webhook event has Webhook instead of Task: the endpoint
// after the change (its last state for webhook_deleted), without its secret, as
// package webhooks encodes it.
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
	Webhook json.RawMessage               `json:"webhook,omitempty"`

	NotesDeleted *int  `json:"notes_deleted,omitempty"`
	AddedNote    *Note `json:"-"` // encoded as "note" by wire
	// Reason says why the system made a change of its own, such as ReasonLeaseExpired.
	Reason string `json:"reason,omitempty"`

	before *Task // the task before the change, for Match; nil but for task_updated
}

// Record is an event as the log keeps and hands it on: its JSON, built once when its
// change was written, and the values filters match it on. Stores persist both and
// return them as they are; the stream, replay and every other reader send Data without
// decoding it.
type Record struct {
	Seq    int64
	Type   EventType
	TaskID int64 // 0 for an event without a task
	Source Source
	Data   json.RawMessage // the event's JSON on one line, seq included
	Match  Match
}

// MarshalJSON implements json.Marshaler: a Record is its event's JSON.
func (r Record) MarshalJSON() ([]byte, error) { return r.Data, nil }

// Match is what filters see of an event's task, besides its id: each value after the
// change and, where the change altered it, before it, so that a filter on a value
// also sees the task leave it. An event without a task has none.
type Match struct {
	Assignees []string `json:"assignee,omitempty"`
	Projects  []string `json:"project,omitempty"`
	Statuses  []string `json:"status,omitempty"`
	Labels    []string `json:"label,omitempty"`
}

// Record encodes e, whose Seq the store has set, into the record the log keeps.
func (e *Event) Record() (Record, error) {
	data, err := json.Marshal(e.wire())
	if err != nil {
		return Record{}, fmt.Errorf("encode event %d: %w", e.Seq, err)
	}
	return Record{Seq: e.Seq, Type: e.Type, TaskID: e.TaskID, Source: e.Source, Data: data, Match: matchOf(e.before, e.Task)}, nil
}

// matchOf lists the filter values of a change from old to t; old is nil for a change
// that has no before (a create, a delete), t nil for an event without a task.
func matchOf(old, t *Task) Match {
	if t == nil {
		return Match{}
	}
	m := Match{
		Assignees: []string{t.Assignee}, Projects: []string{t.Project}, Statuses: []string{string(t.Status)},
		Labels: t.Labels,
	}
	if old == nil {
		return m
	}
	if old.Assignee != t.Assignee {
		m.Assignees = append(m.Assignees, old.Assignee)
	}
	if old.Project != t.Project {
		m.Projects = append(m.Projects, old.Project)
	}
	if old.Status != t.Status {
		m.Statuses = append(m.Statuses, string(old.Status))
	}
	for _, l := range old.Labels {
		if !slices.Contains(m.Labels, l) {
			m.Labels = append(slices.Clip(m.Labels), l)
		}
	}
	return m
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
		{"lease_expires_at", old.LeaseExpiresAt, new.LeaseExpiresAt},
		{"progress", old.Progress, new.Progress},
		{"progress_message", old.ProgressMessage, new.ProgressMessage},
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

package api

import (
	"context"
	"encoding/json"
	"fmt"

	"taskhub/broadcaster"
	"taskhub/tasks"
)

// EventLog is the store's event log as the broadcaster reads it (broadcaster.Log):
// the only way events reach the hub.
type EventLog struct{ Store tasks.Store }

// Last implements broadcaster.Log.
func (l EventLog) Last(ctx context.Context) (int64, error) { return l.Store.LastSeq(ctx) }

// First implements broadcaster.Log.
func (l EventLog) First(ctx context.Context) (int64, error) { return l.Store.FirstSeq(ctx) }

// After implements broadcaster.Log.
func (l EventLog) After(ctx context.Context, after int64, limit int) ([]broadcaster.Event, error) {
	events, err := l.Store.Events(ctx, tasks.EventQuery{After: after, Limit: limit})
	if err != nil {
		return nil, err
	}
	out := make([]broadcaster.Event, len(events))
	for i := range events {
		if out[i], err = toBroadcast(&events[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// toBroadcast encodes e and lists what filters match it on: the task's values after
// the change and, where the change altered them, before it. A file_changed event has
// no task: its TaskID is 0 and only the type and source filters can match it.
func toBroadcast(e *tasks.Event) (broadcaster.Event, error) {
	data, err := json.Marshal(e)
	if err != nil {
		return broadcaster.Event{}, fmt.Errorf("encode event %d: %w", e.Seq, err)
	}
	b := broadcaster.Event{Seq: e.Seq, Type: string(e.Type), Data: data, TaskID: e.TaskID, Source: string(e.Source)}
	if t := e.Task; t != nil {
		b.Assignees = []string{t.Assignee}
		b.Projects = []string{t.Project}
		b.Statuses = []string{string(t.Status)}
		b.Labels = t.Labels
	}
	// The values from before the change, where it altered them. One that does not
	// decode (written by another version, say) only narrows what filters see: it must
	// not stop the stream.
	var assignee, project, status string
	var labels []string
	for field, into := range map[string]any{"assignee": &assignee, "project": &project, "status": &status, "labels": &labels} {
		if c, ok := e.Changes[field]; ok {
			_ = json.Unmarshal(c[0], into)
		}
	}
	if _, ok := e.Changes["assignee"]; ok {
		b.Assignees = append(b.Assignees, assignee)
	}
	if _, ok := e.Changes["project"]; ok {
		b.Projects = append(b.Projects, project)
	}
	if _, ok := e.Changes["status"]; ok {
		b.Statuses = append(b.Statuses, status)
	}
	b.Labels = append(append([]string{}, b.Labels...), labels...)
	return b, nil
}

// StreamVocabulary is what the stream's filters may name: the domain's event types,
// statuses and sources.
func StreamVocabulary() broadcaster.Vocabulary {
	return broadcaster.Vocabulary{
		Types: names(tasks.EventTypes), Statuses: names(tasks.Statuses), Sources: names(tasks.Sources),
	}
}

func names[S ~string](values []S) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = string(v)
	}
	return out
}

// Package tasklog hands the hub the event log of package tasks: the records as they
// are stored, their bytes and filter values untouched.
package tasklog

import (
	"context"

	"taskhub/broadcaster"
	"taskhub/tasks"
)

// Log is store's event log as the hub reads it for replay: a broadcaster.Log.
type Log struct{ Store tasks.Store }

// Last implements broadcaster.Log.
func (l Log) Last(ctx context.Context) (int64, error) { return l.Store.LastSeq(ctx) }

// First implements broadcaster.Log.
func (l Log) First(ctx context.Context) (int64, error) { return l.Store.FirstSeq(ctx) }

// After implements broadcaster.Log.
func (l Log) After(ctx context.Context, after int64, limit int) ([]broadcaster.Event, error) {
	records, err := l.Store.Events(ctx, tasks.EventQuery{After: after, Limit: limit})
	if err != nil {
		return nil, err
	}
	events := make([]broadcaster.Event, len(records))
	for i := range records {
		events[i] = Event(&records[i])
	}
	return events, nil
}

// Event is r as the hub publishes it.
func Event(r *tasks.Record) broadcaster.Event {
	return broadcaster.Event{
		Seq: r.Seq, Type: string(r.Type), Data: r.Data, TaskID: r.TaskID, Source: string(r.Source),
		Assignees: r.Match.Assignees, Projects: r.Match.Projects, Statuses: r.Match.Statuses, Labels: r.Match.Labels,
	}
}

// Publish returns the tailer listener that publishes each record to hub.
func Publish(hub *broadcaster.Hub) func(*tasks.Record) {
	return func(r *tasks.Record) {
		e := Event(r)
		hub.Publish(&e)
	}
}

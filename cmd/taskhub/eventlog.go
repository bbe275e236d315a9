package main

import (
	"context"
	"log/slog"
	"sync"

	"taskhub/broadcaster"
	"taskhub/tasks"
)

// hubLog is the event log as the hub reads it for replay (broadcaster.Log).
type hubLog struct{ store tasks.Store }

func (l hubLog) Last(ctx context.Context) (int64, error)  { return l.store.LastSeq(ctx) }
func (l hubLog) First(ctx context.Context) (int64, error) { return l.store.FirstSeq(ctx) }

func (l hubLog) After(ctx context.Context, after int64, limit int) ([]broadcaster.Event, error) {
	records, err := l.store.Events(ctx, tasks.EventQuery{After: after, Limit: limit})
	if err != nil {
		return nil, err
	}
	events := make([]broadcaster.Event, len(records))
	for i := range records {
		events[i] = hubEvent(&records[i])
	}
	return events, nil
}

// hubEvent hands r to the hub as it is: its bytes and its filter values.
func hubEvent(r *tasks.Record) broadcaster.Event {
	return broadcaster.Event{
		Seq: r.Seq, Type: string(r.Type), Data: r.Data, TaskID: r.TaskID, Source: string(r.Source),
		Assignees: r.Match.Assignees, Projects: r.Match.Projects, Statuses: r.Match.Statuses, Labels: r.Match.Labels,
	}
}

// followLog starts what follows the event log: the tailer, which hands every
// committed event to the hub (when there is one) and to the MCP server's resource
// subscriptions. It fills the hub's replay ring first. The loops run on background
// until ctx ends.
func followLog(ctx context.Context, background *sync.WaitGroup, store tasks.Store, hub *broadcaster.Hub, taskChanged func(int64), logger *slog.Logger) (*tasks.Tailer, error) {
	tailer, err := tasks.NewTailer(ctx, store, tasks.TailerConfig{Logger: logger})
	if err != nil {
		return nil, err
	}
	if hub != nil {
		if err := hub.Prime(ctx, tailer.Seq()); err != nil {
			return nil, err
		}
		background.Go(func() { hub.Run(ctx) })
	}
	tailer.Listen(func(r *tasks.Record) {
		if hub != nil {
			e := hubEvent(r)
			hub.Publish(&e)
		}
		if r.TaskID != 0 {
			taskChanged(r.TaskID)
		}
	})
	background.Go(func() { tailer.Run(ctx) })
	return tailer, nil
}

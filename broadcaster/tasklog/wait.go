package tasklog

import (
	"context"
	"time"

	"taskhub/broadcaster"
	"taskhub/tasks"
)

// Wake returns the tailer listener that hands each record to waits, whose calls it
// wakes.
func Wake(waits *broadcaster.Waits) func(*tasks.Record) {
	return func(r *tasks.Record) {
		e := Event(r)
		waits.Publish(&e)
	}
}

// WaitRequest is what a waiting call asks for: the events after seq After that
// Filter selects, up to Limit of them, waiting up to Timeout for a first one.
type WaitRequest struct {
	Owner   string // who waits (a token's or an actor's name), for the bounds of Waits
	After   int64
	Filter  broadcaster.Filter
	Limit   int
	Timeout time.Duration // 0: answer at once
}

// Wait answers req from svc's log as Service.EventsFor does, with the seq to go on
// from: at once when there are matching events (or req.Timeout is 0); else as soon as
// a matching event is committed, the tailer feeding waits having seen it; else with
// none when req.Timeout has passed, or waits was closed. Bad arguments are refused
// before anything waits. While it waits it holds no database connection: it reads the
// log once more, then again only when a matching event was committed, and at the end.
func Wait(ctx context.Context, svc *tasks.Service, waits *broadcaster.Waits, req WaitRequest) ([]tasks.Record, int64, error) {
	q := Query(req.After, req.Filter, req.Limit)
	events, last, err := svc.EventsFor(ctx, q)
	if err != nil || len(events) > 0 || req.Timeout <= 0 {
		return events, last, err
	}
	err = waits.Wait(ctx, req.Owner, req.Filter, req.Timeout, func(ctx context.Context) (bool, error) {
		var err error
		events, last, err = svc.EventsFor(ctx, q)
		return len(events) > 0, err
	})
	return events, last, err
}

// Query is the query of the log that selects what f selects: up to limit events
// after seq after. Its values are checked by the Service that runs it.
func Query(after int64, f broadcaster.Filter, limit int) tasks.EventQuery {
	return tasks.EventQuery{
		After: after, TaskIDs: f.TaskIDs, Types: as[tasks.EventType](f.Types), Sources: as[tasks.Source](f.Sources),
		Assignees: f.Assignees, Projects: f.Projects, Statuses: as[tasks.Status](f.Statuses), Labels: f.Labels,
		Limit: limit,
	}
}

func as[S ~string](values []string) []S {
	if values == nil {
		return nil
	}
	out := make([]S, len(values))
	for i, v := range values {
		out[i] = S(v)
	}
	return out
}

package main

import (
	"context"
	"log/slog"
	"sync"

	"taskhub/broadcaster"
	"taskhub/broadcaster/tasklog"
	"taskhub/tasks"
)

// tailLog starts what follows the event log: the tailer, which hands every committed
// event to the hub (when there is one), to the calls waiting for events and to the MCP
// server's resource subscriptions. It fills the hub's replay ring first. ctx bounds
// the start; the loops run on background until bgCtx ends.
func tailLog(ctx, bgCtx context.Context, background *sync.WaitGroup, store tasks.Store, hub *broadcaster.Hub, waits *broadcaster.Waits, taskChanged func(int64), logger *slog.Logger) (*tasks.Tailer, error) {
	tailer, err := tasks.NewTailer(ctx, store, tasks.TailerConfig{Logger: logger})
	if err != nil {
		return nil, err
	}
	if hub != nil {
		if err := hub.Prime(ctx, tailer.Seq()); err != nil {
			return nil, err
		}
		background.Go(func() { hub.Run(bgCtx) })
	}
	if hub != nil {
		tailer.Listen(tasklog.Publish(hub))
	}
	tailer.Listen(tasklog.Wake(waits))
	tailer.Listen(func(r *tasks.Record) {
		if r.TaskID != 0 {
			taskChanged(r.TaskID)
		}
	})
	background.Go(func() { tailer.Run(bgCtx) })
	return tailer, nil
}

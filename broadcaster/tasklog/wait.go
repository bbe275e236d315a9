package tasklog

import (
	"taskhub/broadcaster"
	"taskhub/tasks"
)

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

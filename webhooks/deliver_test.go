package webhooks

import (
	"encoding/json"
	"testing"
	"time"

	"taskhub/tasks"
)

func TestEventTime(t *testing.T) {
	at := tasks.NewTime(time.Date(2026, 3, 4, 5, 6, 7, 890123000, time.UTC))
	decoy := tasks.NewTime(at.Add(-time.Hour))
	task := &tasks.Task{ID: 3, Title: `a "time":"` + decoy.String() + `" in a title`, Status: tasks.StatusTodo,
		Labels: []string{}, DependsOn: []int64{}, Version: 1, CreatedAt: decoy, UpdatedAt: decoy}
	for _, e := range []*tasks.Event{
		{Seq: 7, Type: tasks.EventTaskCreated, TaskID: 3, Source: tasks.SourceREST, Actor: `"time":"` + decoy.String(), Time: at, Task: task},
		{Seq: 8, Type: tasks.EventWebhookUpdated, Source: tasks.SourceSystem, Actor: "system", Time: at,
			Webhook: json.RawMessage(`{"id":1,"time":"` + decoy.String() + `"}`)},
	} {
		r, err := e.Record()
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := eventTime(r.Data); !ok || !got.Equal(at.Time) {
			t.Errorf("eventTime of %s = %v, %v; want %v", r.Data, got, ok, at)
		}
	}
	for _, data := range []string{`{"seq":1}`, `{"seq":1,"time":"yesterday"}`, `{"seq":1,"time":"2026-03-04T05:06:07Z`} {
		if got, ok := eventTime([]byte(data)); ok {
			t.Errorf("eventTime of %s = %v, want none", data, got)
		}
	}
}

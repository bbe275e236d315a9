package mcptools_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"taskhub/tasks"
)

func TestAgentTools(t *testing.T) {
	s, svc := newServer(t)
	c := connect(t, s, "claude-code")
	task := ok[tasks.Task](t, callTool(t, c, "create_task", `{"title":"work"}`))

	start := time.Now()
	res := callTool(t, c, "claim_task", fmt.Sprintf(`{"task_id":%d,"lease_seconds":120}`, task.ID))
	claimed := ok[tasks.Task](t, res)
	if claimed.LeaseExpiresAt == nil || claimed.LeaseExpiresAt.Sub(start) < 2*time.Minute || claimed.LeaseExpiresAt.Sub(start) > 3*time.Minute {
		t.Fatalf("claimed with a lease of 120 s: %v", claimed.LeaseExpiresAt)
	}
	if !strings.Contains(text(res), "lease runs out at "+claimed.LeaseExpiresAt.String()) {
		t.Errorf("the claim's text %q does not say when the lease runs out", text(res))
	}

	renewed := ok[tasks.Task](t, callTool(t, c, "heartbeat_task", fmt.Sprintf(`{"task_id":%d}`, task.ID)))
	if renewed.Version != claimed.Version || renewed.LeaseExpiresAt.Before(claimed.LeaseExpiresAt.Time) {
		t.Errorf("renewed: version %d (was %d), lease %v (was %v)", renewed.Version, claimed.Version, renewed.LeaseExpiresAt, claimed.LeaseExpiresAt)
	}

	res = callTool(t, c, "report_progress", fmt.Sprintf(`{"task_id":%d,"progress":70,"message":"tests pass"}`, task.ID))
	reported := ok[tasks.Task](t, res)
	if reported.Progress != 70 || reported.ProgressMessage != "tests pass" || reported.Version != claimed.Version+1 {
		t.Errorf("reported %+v", reported)
	}
	if !strings.Contains(text(res), "70%") {
		t.Errorf("text %q", text(res))
	}

	released := ok[tasks.Task](t, callTool(t, c, "release_task", fmt.Sprintf(`{"task_id":%d,"note":"the rest needs a key I lack"}`, task.ID)))
	if released.Status != tasks.StatusTodo || released.Assignee != "" || released.LeaseExpiresAt != nil {
		t.Errorf("released %+v", released)
	}
	records, err := svc.TaskEvents(context.Background(), task.ID)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, r := range records {
		types = append(types, string(r.Type))
	}
	if want := "[task_created task_updated task_lease_renewed task_updated task_updated]"; fmt.Sprint(types) != want {
		t.Errorf("events %v, want %s", types, want)
	}
	if last := string(records[len(records)-1].Data); !strings.Contains(last, `"note":"the rest needs a key I lack"`) || !strings.Contains(last, `"actor":"claude-code"`) {
		t.Errorf("release event %s", last)
	}
}

// TestAgentToolsFail: bad arguments and calls on a task one does not hold are
// results with isError, naming the argument, and change nothing.
func TestAgentToolsFail(t *testing.T) {
	s, svc := newServer(t)
	c := connect(t, s, "agent")
	other := connect(t, s, "other-agent")
	free := ok[tasks.Task](t, callTool(t, c, "create_task", `{"title":"free"}`))
	held := ok[tasks.Task](t, callTool(t, c, "create_task", `{"title":"held"}`))
	ok[tasks.Task](t, callTool(t, c, "claim_task", fmt.Sprintf(`{"task_id":%d}`, held.ID)))
	review := ok[tasks.Task](t, callTool(t, c, "create_task", `{"title":"in review"}`))
	ok[tasks.Task](t, callTool(t, c, "claim_task", fmt.Sprintf(`{"task_id":%d}`, review.ID)))
	ok[tasks.Task](t, callTool(t, c, "update_task_status", fmt.Sprintf(`{"task_id":%d,"status":"review"}`, review.ID)))

	versions := func() string {
		var out []string
		for _, id := range []int64{free.ID, held.ID, review.ID} {
			task, err := svc.Get(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("%d:v%d:%v", id, task.Version, task.LeaseExpiresAt))
		}
		_, last, _ := svc.Events(context.Background(), 1<<62, 1)
		return fmt.Sprintf("%v last %d", out, last)
	}
	before := versions()
	for _, tc := range []struct {
		who        string
		tool, args string
		want       []string
	}{
		{"agent", "claim_task", fmt.Sprintf(`{"task_id":%d,"lease_seconds":-1}`, free.ID), []string{"lease_seconds"}},
		{"agent", "claim_task", fmt.Sprintf(`{"task_id":%d,"lease_seconds":0}`, free.ID), []string{"lease_seconds"}},
		{"agent", "claim_task", fmt.Sprintf(`{"task_id":%d,"lease_seconds":59}`, free.ID), []string{"lease_seconds", "60"}},
		{"agent", "claim_task", fmt.Sprintf(`{"task_id":%d,"lease_seconds":86401}`, free.ID), []string{"lease_seconds", "want 86,400"}},
		{"agent", "claim_task", `{"lease_seconds":31536000}`, []string{"lease_seconds"}},
		{"agent", "claim_task", `{"lease_seconds":"60"}`, []string{"lease_seconds"}},
		{"agent", "report_progress", fmt.Sprintf(`{"task_id":%d,"progress":-1}`, held.ID), []string{"progress"}},
		{"agent", "report_progress", fmt.Sprintf(`{"task_id":%d,"progress":101}`, held.ID), []string{"progress", "100"}},
		{"agent", "report_progress", fmt.Sprintf(`{"task_id":%d,"progress":1.5}`, held.ID), []string{"progress"}},
		{"agent", "report_progress", fmt.Sprintf(`{"task_id":%d,"progress":"x"}`, held.ID), []string{"progress"}},
		{"agent", "report_progress", fmt.Sprintf(`{"task_id":%d}`, held.ID), []string{"progress"}},
		{"agent", "report_progress", fmt.Sprintf(`{"task_id":%d,"progress":5,"message":%q}`, held.ID, strings.Repeat("x", tasks.MaxProgressMessage+1)), []string{"message"}},
		{"other-agent", "report_progress", fmt.Sprintf(`{"task_id":%d,"progress":5}`, held.ID), []string{"task_id", "held by agent"}},
		{"other-agent", "heartbeat_task", fmt.Sprintf(`{"task_id":%d}`, held.ID), []string{"task_id", "held by agent"}},
		{"agent", "heartbeat_task", fmt.Sprintf(`{"task_id":%d}`, review.ID), []string{"task_id", "holds no lease"}},
		{"agent", "heartbeat_task", fmt.Sprintf(`{"task_id":%d}`, free.ID), []string{"task_id", "not claimed"}},
		{"agent", "heartbeat_task", `{"task_id":999}`, []string{"task_id", "not found"}},
		{"agent", "heartbeat_task", `{}`, []string{"task_id"}},
		{"other-agent", "release_task", fmt.Sprintf(`{"task_id":%d}`, held.ID), []string{"task_id", "held by agent"}},
		{"agent", "release_task", fmt.Sprintf(`{"task_id":%d,"note":%q}`, held.ID, strings.Repeat("x", tasks.MaxNoteText+1)), []string{"note"}},
		{"agent", "release_task", fmt.Sprintf(`{"task_id":%d,"colour":"red"}`, held.ID), []string{"colour"}},
	} {
		t.Run(tc.tool+" "+tc.args[:min(len(tc.args), 60)], func(t *testing.T) {
			caller := c
			if tc.who == "other-agent" {
				caller = other
			}
			failed(t, callTool(t, caller, tc.tool, tc.args), tc.want...)
			if now := versions(); now != before {
				t.Errorf("changed:\n%s\n%s", before, now)
			}
		})
	}
}

package mcptools_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"taskhub/broadcaster"
	"taskhub/tasks"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
)

func as(name string) context.Context {
	return tasks.WithActor(context.Background(), tasks.Actor{Source: tasks.SourceREST, Name: name})
}

// getPrompt returns the text of prompt name with args, or the error.
func getPrompt(c *client.Client, name string, args map[string]string) (string, error) {
	req := mcp.GetPromptRequest{}
	req.Params.Name, req.Params.Arguments = name, args
	res, err := c.GetPrompt(context.Background(), req)
	if err != nil {
		return "", err
	}
	var parts []string
	for _, m := range res.Messages {
		if m.Role != mcp.RoleUser {
			return "", fmt.Errorf("a message of role %s", m.Role)
		}
		tc, ok := m.Content.(mcp.TextContent)
		if !ok {
			return "", fmt.Errorf("content %T", m.Content)
		}
		parts = append(parts, tc.Text)
	}
	return strings.Join(parts, "\n"), nil
}

func wantText(t *testing.T, name, text string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("%s: text does not contain %q:\n%s", name, w, text)
		}
	}
}

// TestPromptsList: the four prompts, each with its arguments in order and only
// handoff's task_id required; the server says it has prompts and completions.
func TestPromptsList(t *testing.T) {
	h := newWaitHub(t, broadcaster.WaitsConfig{})
	tr := h.connect(t, "lister")
	res, err := tr.ListPrompts(context.Background(), mcp.ListPromptsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range res.Prompts {
		var args []string
		for _, a := range p.Arguments {
			if a.Description == "" {
				t.Errorf("%s: argument %s has no description", p.Name, a.Name)
			}
			if a.Required {
				args = append(args, a.Name+"*")
			} else {
				args = append(args, a.Name)
			}
		}
		if p.Description == "" || p.Title == "" {
			t.Errorf("%s: title %q, description %q", p.Name, p.Title, p.Description)
		}
		got = append(got, p.Name+"("+strings.Join(args, " ")+")")
	}
	want := "[handoff(task_id*) next_task(project label) plan(project goal) standup(project since assignee)]"
	if fmt.Sprint(got) != want {
		t.Errorf("prompts %v, want %s", got, want)
	}
}

func TestNextTaskPrompt(t *testing.T) {
	h := newWaitHub(t, broadcaster.WaitsConfig{})
	c := h.connect(t, "agent")
	text, err := getPrompt(c, "next_task", map[string]string{"project": "site", "label": " docs "})
	if err != nil {
		t.Fatal(err)
	}
	wantText(t, "next_task", text, `in project "site" and label "docs"`, `claim_task with {"label":"docs","project":"site"}`,
		`wait_for_events with {"label":"docs","project":"site","types":["task_created","task_updated"]}`,
		"heartbeat_task", "report_progress", "add_note", "list_notes", "release_task", "update_task_status with status done")
	text, err = getPrompt(c, "next_task", nil)
	if err != nil {
		t.Fatal(err)
	}
	wantText(t, "next_task without arguments", text, "Take the next ready task from TaskHub and", "claim_task with {}")
}

func TestPlanPrompt(t *testing.T) {
	h := newWaitHub(t, broadcaster.WaitsConfig{})
	c := h.connect(t, "planner")
	must(h.svc.Create(as("alice"), tasks.Update{Title: tasks.Value("set up CI"), Project: tasks.Value("site")}))(t)
	done := must(h.svc.Create(as("alice"), tasks.Update{Title: tasks.Value("old work"), Project: tasks.Value("site")}))(t)
	must(h.svc.Update(as("alice"), done.ID, 0, tasks.Update{Status: tasks.Value(tasks.StatusDone)}))(t)
	must(h.svc.Create(as("alice"), tasks.Update{Title: tasks.Value("elsewhere"), Project: tasks.Value("api")}))(t)
	text, err := getPrompt(c, "plan", map[string]string{"project": "site", "goal": "Ship the docs site\nwith search"})
	if err != nil {
		t.Fatal(err)
	}
	wantText(t, "plan", text, `in project "site"`, "Ship the docs site\nwith search", `#1 "set up CI" (todo, medium)`,
		`create_task, project "site"`, "depends_on", "parent_id")
	if strings.Contains(text, "old work") || strings.Contains(text, "elsewhere") {
		t.Errorf("plan lists a done task or another project's:\n%s", text)
	}
	text, err = getPrompt(c, "plan", map[string]string{"project": "empty"})
	if err != nil {
		t.Fatal(err)
	}
	wantText(t, "plan without a goal", text, "ask for it first")
}

func TestStandupPrompt(t *testing.T) {
	h := newWaitHub(t, broadcaster.WaitsConfig{})
	c := h.connect(t, "lead")
	a := must(h.svc.Create(as("alice"), tasks.Update{Title: tasks.Value("write docs"), Project: tasks.Value("site")}))(t)
	b := must(h.svc.Create(as("alice"), tasks.Update{Title: tasks.Value("fix search"), Project: tasks.Value("site")}))(t)
	must(h.svc.Create(as("alice"), tasks.Update{Title: tasks.Value("other project"), Project: tasks.Value("api")}))(t)
	must(h.svc.Claim(as("claude-code"), tasks.ClaimRequest{TaskID: a.ID}))(t)
	must(h.svc.Update(as("claude-code"), a.ID, 0, tasks.Update{Status: tasks.Value(tasks.StatusDone), Note: "all pages written"}))(t)
	must(h.svc.Update(as("bob"), b.ID, 0, tasks.Update{Status: tasks.Value(tasks.StatusBlocked), Assignee: tasks.Value("bob"), Description: tasks.Value("needs an index"), Note: "waiting on the index"}))(t)

	text, err := getPrompt(c, "standup", map[string]string{"project": "site", "since": "1h"})
	if err != nil {
		t.Fatal(err)
	}
	wantText(t, "standup", text, `project "site"`, "(5 events)",
		fmt.Sprintf(`#%d "write docs" (now done, assigned to claude-code)`, a.ID), "created by alice",
		`status todo → in_progress; assignee "" → claude-code by claude-code`, `status in_progress → done by claude-code: "all pages written"`,
		fmt.Sprintf(`#%d "fix search" (now blocked, assigned to bob)`, b.ID), `status todo → blocked; assignee "" → bob; description changed by bob: "waiting on the index"`)
	if strings.Contains(text, "other project") {
		t.Errorf("standup shows another project's task:\n%s", text)
	}
	text, err = getPrompt(c, "standup", map[string]string{"project": "site", "assignee": "bob", "since": "2000-01-01"})
	if err != nil {
		t.Fatal(err)
	}
	wantText(t, "standup for bob", text, "for bob", "(1 events)", `"fix search"`)
	text, err = getPrompt(c, "standup", map[string]string{"project": "site", "since": "2999-01-01T00:00:00Z"})
	if err != nil {
		t.Fatal(err)
	}
	wantText(t, "standup of the future", text, "Nothing happened")
	if _, err := getPrompt(c, "standup", map[string]string{"since": "last week"}); err == nil || !strings.Contains(err.Error(), "argument since") {
		t.Errorf("a bad since: %v", err)
	}
}

func TestHandoffPrompt(t *testing.T) {
	h := newWaitHub(t, broadcaster.WaitsConfig{})
	c := h.connect(t, "claude-code")
	task := must(h.svc.Create(as("alice"), tasks.Update{Title: tasks.Value("write docs")}))(t)
	must(h.svc.Claim(as("claude-code"), tasks.ClaimRequest{TaskID: task.ID}))(t)
	text, err := getPrompt(c, "handoff", map[string]string{"task_id": fmt.Sprint(task.ID)})
	if err != nil {
		t.Fatal(err)
	}
	wantText(t, "handoff", text, fmt.Sprintf(`task #%d "write docs"`, task.ID), `"assignee":"claude-code"`,
		fmt.Sprintf("release_task with task_id %d", task.ID), fmt.Sprintf("list_notes with task_id %d", task.ID), "Do not mark it done")
	if strings.Contains(text, "only its holder") {
		t.Errorf("handoff by its holder warns that it is someone else's:\n%s", text)
	}
	other := h.connect(t, "someone-else")
	text, err = getPrompt(other, "handoff", map[string]string{"task_id": fmt.Sprint(task.ID)})
	if err != nil {
		t.Fatal(err)
	}
	wantText(t, "handoff by another", text, "held by claude-code, not by you (someone-else)", "add_note")

	for _, tc := range []struct {
		prompt string
		args   map[string]string
		want   string
	}{
		{"handoff", nil, "missing required argument task_id"},
		{"handoff", map[string]string{"task_id": "99"}, "not found (argument task_id)"},
		{"handoff", map[string]string{"task_id": "x"}, "argument task_id"},
		{"next_task", map[string]string{"colour": "red"}, "unknown argument colour"},
		{"next_task", map[string]string{"project": strings.Repeat("p", tasks.MaxProject+1)}, "argument project"},
		{"nope", nil, "not found"},
	} {
		if _, err := getPrompt(c, tc.prompt, tc.args); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %v: %v, want an error with %q", tc.prompt, tc.args, err, tc.want)
		}
	}
}

// TestCompletions: project, label, assignee and task_id complete from the tasks, by
// prefix; other arguments, other prompts and other references complete to nothing;
// the task resource template's id completes to task ids.
func TestCompletions(t *testing.T) {
	h := newWaitHub(t, broadcaster.WaitsConfig{})
	c := h.connect(t, "completer")
	for _, u := range []tasks.Update{
		{Project: tasks.Value("site"), Labels: tasks.Value([]string{"docs", "dev"}), Assignee: tasks.Value("alice")},
		{Project: tasks.Value("search"), Assignee: tasks.Value("bob")},
		{Project: tasks.Value("api")},
	} {
		u.Title = tasks.Value("t")
		must(h.svc.Create(as("alice"), u))(t)
	}
	for range 9 {
		must(h.svc.Create(as("alice"), tasks.Update{Title: tasks.Value("t")}))(t)
	}
	complete := func(ref any, arg, value string) []string {
		t.Helper()
		req := mcp.CompleteRequest{}
		req.Params.Ref, req.Params.Argument = ref, mcp.CompleteArgument{Name: arg, Value: value}
		res, err := c.Complete(context.Background(), req)
		if err != nil {
			t.Fatalf("complete %v %s=%q: %v", ref, arg, value, err)
		}
		return res.Completion.Values
	}
	prompt := func(name string) mcp.PromptReference { return mcp.PromptReference{Type: "ref/prompt", Name: name} }
	for _, tc := range []struct {
		ref        any
		arg, value string
		want       string
	}{
		{prompt("next_task"), "project", "s", "[search site]"},
		{prompt("plan"), "project", "", "[api search site]"},
		{prompt("next_task"), "label", "d", "[dev docs]"},
		{prompt("standup"), "assignee", "", "[alice bob]"},
		{prompt("handoff"), "task_id", "1", "[12 11 10 1]"},
		{prompt("plan"), "goal", "", "[]"},
		{prompt("next_task"), "assignee", "", "[]"}, // next_task has no such argument
		{prompt("nope"), "project", "", "[]"},
		{mcp.ResourceReference{Type: "ref/resource", URI: "taskhub://tasks/{id}"}, "id", "", "[12 11 10 9 8 7 6 5 4 3 2 1]"},
		{mcp.ResourceReference{Type: "ref/resource", URI: "taskhub://other/{id}"}, "id", "", "[]"},
	} {
		if got := fmt.Sprint(complete(tc.ref, tc.arg, tc.value)); got != tc.want {
			t.Errorf("complete %+v %s=%q: %s, want %s", tc.ref, tc.arg, tc.value, got, tc.want)
		}
	}
}

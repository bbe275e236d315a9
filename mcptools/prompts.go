package mcptools

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"taskhub/broadcaster"
	"taskhub/broadcaster/tasklog"
	"taskhub/tasks"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// A prompt's arguments, in the order a client that takes them by position (Claude
// Code's slash commands) gives them.
type promptArg struct {
	name, desc string
	required   bool
	max        int // characters; 0: the argument is checked where it is read
}

type prompt struct {
	name, title, desc string
	args              []promptArg
	build             func(ctx context.Context, args map[string]string) (string, error)
}

// The arguments that several prompts take.
func projectArg() promptArg {
	return promptArg{name: "project", desc: "the project (repository) to work in; empty for every task", max: tasks.MaxProject}
}

func labelArg() promptArg {
	return promptArg{name: "label", desc: "only tasks with this label", max: tasks.MaxLabel}
}

// standupSince is how far back standup looks without a since argument.
const standupSince = 24 * time.Hour

func (s *Server) prompts() []prompt {
	return []prompt{
		{"next_task", "Next task", "Claim the next ready task (within a project and label) and start on it.",
			[]promptArg{projectArg(), labelArg()}, s.nextTaskPrompt},
		{"plan", "Plan", "Turn a goal into tasks, with depends_on between them, in a project.",
			[]promptArg{projectArg(), {name: "goal", desc: "what should be achieved; if left out, the goal is asked for", max: tasks.MaxDescriptionLen}},
			s.planPrompt},
		{"standup", "Standup", "What happened in a project since a time, from the event log: done, in progress, blocked, next.",
			[]promptArg{projectArg(), {name: "since", desc: "an RFC 3339 time, a date (2026-11-21) or a duration back from now (8h); default 24h"},
				{name: "assignee", desc: "only the tasks assigned to this agent or person (before or after a change)", max: tasks.MaxAssignee}},
			s.standupPrompt},
		{"handoff", "Handoff", "Release a task you hold, with a note for the next agent.",
			[]promptArg{{name: "task_id", desc: "the task to hand over", required: true}}, s.handoffPrompt},
	}
}

func (s *Server) addPrompts() {
	for _, p := range s.prompts() {
		opts := []mcp.PromptOption{mcp.WithPromptTitle(p.title), mcp.WithPromptDescription(p.desc)}
		for _, a := range p.args {
			argOpts := []mcp.ArgumentOption{mcp.ArgumentDescription(a.desc)}
			if a.required {
				argOpts = append(argOpts, mcp.RequiredArgument())
			}
			opts = append(opts, mcp.WithArgument(a.name, argOpts...))
		}
		s.mcp.AddPrompt(mcp.NewPrompt(p.name, opts...), func(ctx context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			args, err := p.check(req.Params.Arguments)
			if err != nil {
				return nil, err
			}
			text, err := p.build(ctx, args)
			if err != nil {
				if e, ok := asError(err); !ok || e.Code == tasks.EInternal {
					s.logger.Error("prompt failed", "prompt", p.name, "err", err)
					return nil, fmt.Errorf("internal error: try again")
				}
				return nil, promptError(err)
			}
			return mcp.NewGetPromptResult(p.desc, []mcp.PromptMessage{mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent(text))}), nil
		})
	}
}

// check returns the arguments given, trimmed, after checking them against p's: an
// unknown one, a missing required one or one that is too long is an error naming it.
func (p prompt) check(given map[string]string) (map[string]string, error) {
	args := map[string]string{}
	for name, v := range given {
		i := slices.IndexFunc(p.args, func(a promptArg) bool { return a.name == name })
		if i < 0 {
			names := make([]string, len(p.args))
			for j, a := range p.args {
				names[j] = a.name
			}
			return nil, promptError(tasks.Errorf(tasks.EInvalid, name, "unknown argument %s (known: %s)", name, strings.Join(names, ", ")))
		}
		v = strings.TrimSpace(v)
		if a := p.args[i]; a.max > 0 && utf8.RuneCountInString(v) > a.max {
			return nil, promptError(tasks.Errorf(tasks.EInvalid, name, "%s must be at most %d characters", name, a.max))
		}
		args[name] = v
	}
	for _, a := range p.args {
		if a.required && args[a.name] == "" {
			return nil, promptError(tasks.Errorf(tasks.EInvalid, a.name, "missing required argument %s", a.name))
		}
	}
	return args, nil
}

// promptError words a domain error as a tool's is worded.
func promptError(err error) error {
	e, ok := asError(err)
	if !ok {
		return err
	}
	msg := e.Code + ": " + e.Message
	if e.Field != "" {
		msg += " (argument " + e.Field + ")"
	}
	return fmt.Errorf("%s", msg)
}

// within says which tasks a project and a label narrow to, for a prompt's text.
func within(project, label string) string {
	var parts []string
	if project != "" {
		parts = append(parts, fmt.Sprintf("project %q", project))
	}
	if label != "" {
		parts = append(parts, fmt.Sprintf("label %q", label))
	}
	return strings.Join(parts, " and ")
}

// toolArgs writes the arguments of a tool call as JSON, for a prompt's text; empty
// strings are left out.
func toolArgs(args map[string]any) string {
	for k, v := range args {
		if v == "" {
			delete(args, k)
		}
	}
	b, _ := json.Marshal(args) // strings and lists of them always marshal
	return string(b)
}

func (s *Server) nextTaskPrompt(_ context.Context, args map[string]string) (string, error) {
	project, label := args["project"], args["label"]
	scope := ""
	if w := within(project, label); w != "" {
		scope = " in " + w
	}
	claim := toolArgs(map[string]any{"project": project, "label": label})
	wait := toolArgs(map[string]any{"project": project, "label": label, "types": []tasks.EventType{tasks.EventTaskCreated, tasks.EventTaskUpdated}})
	return fmt.Sprintf(`Take the next ready task from TaskHub%[1]s and work on it.

1. Call claim_task with %[2]s. It gives you the ready task of highest priority (then the oldest): todo, every task in its depends_on done, and nobody else's. The task is now in_progress, assigned to you, with a lease (lease_expires_at).
2. If nothing is ready, call wait_for_events with %[3]s to wait for new or freed work, then claim_task again. After three empty tries, stop and say that nothing is ready.
3. Read the task: its description, and the notes earlier agents left (list_notes with its task_id).
4. Work on it. Keep the claim while you do: call heartbeat_task with its task_id before lease_expires_at, report_progress (progress 0 to 100, a short message) at each milestone, and add_note for what the next person must know.
5. When it is finished, update_task_status with status done and a note saying what you did. If you are blocked, update_task_status with status blocked and a note saying why. If you must stop before it is done, release_task with a note on where you left it.`, scope, claim, wait), nil
}

func (s *Server) planPrompt(ctx context.Context, args map[string]string) (string, error) {
	project, goal := args["project"], args["goal"]
	var b strings.Builder
	if project != "" {
		fmt.Fprintf(&b, "Plan the work below as tasks on TaskHub, in project %q.\n\n", project)
	} else {
		b.WriteString("Plan the work below as tasks on TaskHub.\n\n")
	}
	if goal != "" {
		fmt.Fprintf(&b, "The goal:\n\n%s\n\n", goal)
	} else {
		b.WriteString("The goal is the one the user gives in this conversation; if they have not, ask for it first.\n\n")
	}
	open, err := s.svc.List(ctx, tasks.Filter{Project: project, Limit: tasks.MaxListLimit,
		Statuses: []tasks.Status{tasks.StatusTodo, tasks.StatusInProgress, tasks.StatusReview, tasks.StatusBlocked}})
	if err != nil {
		return "", err
	}
	if len(open.Tasks) > 0 {
		b.WriteString("Tasks not done yet in the project, which the plan may build on or depend on instead of repeating:\n")
		for _, t := range open.Tasks {
			fmt.Fprintf(&b, "- #%d %q (%s, %s)\n", t.ID, t.Title, t.Status, t.Priority)
		}
		if open.NextCursor != "" {
			b.WriteString("- and more: list_tasks shows them all\n")
		}
		b.WriteString("\n")
	}
	projectArgs := ""
	if project != "" {
		projectArgs = fmt.Sprintf(", project %q", project)
	}
	fmt.Fprintf(&b, `Steps:
1. Break the goal into tasks that one agent can each finish in a session: a title (at most %[1]d characters), a description with what done means, a priority (urgent, high, medium, low) and labels where they help.
2. Create them with create_task%[2]s, first those that others wait on: create_task returns each task's id, which later tasks name in depends_on (the ids of the tasks that must be done before this one is ready). A cycle is refused. For a large goal, an umbrella task with the others as its subtasks (parent_id) keeps the plan together.
3. Answer with the plan: each task's id and title, and what depends on what.`, tasks.MaxTitle, projectArgs)
	return b.String(), nil
}

// parseSince reads standup's since: an RFC 3339 time, a date (midnight UTC), or a
// positive duration back from now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return now.Add(-standupSince), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, tasks.Errorf(tasks.EInvalid, "since", "since must be an RFC 3339 time (2026-11-21T09:00:00Z), a date (2026-11-21) or a duration back from now (8h), got %q", s)
}

// logEvent is what standup reads of an event.
type logEvent struct {
	Seq    int64      `json:"seq"`
	Type   string     `json:"type"`
	TaskID int64      `json:"task_id"`
	Actor  string     `json:"actor"`
	Time   tasks.Time `json:"time"`
	Task   *struct {
		Title    string `json:"title"`
		Status   string `json:"status"`
		Assignee string `json:"assignee"`
	} `json:"task"`
	Changes map[string][2]json.RawMessage `json:"changes"`
	Note    json.RawMessage               `json:"note"` // a string on a change; a note's object
	Reason  string                        `json:"reason"`
}

// standupEvents is how many events standup reads of the log at most.
const standupEvents = tasks.MaxEventsLimit

func (s *Server) standupPrompt(ctx context.Context, args map[string]string) (string, error) {
	project, assignee := args["project"], args["assignee"]
	since, err := parseSince(args["since"], time.Now())
	if err != nil {
		return "", err
	}
	after, err := s.svc.SeqBefore(ctx, since)
	if err != nil {
		return "", err
	}
	var f broadcaster.Filter
	if project != "" {
		f.Projects = []string{project}
	}
	if assignee != "" {
		f.Assignees = []string{assignee}
	}
	records, last, err := s.svc.EventsFor(ctx, tasklog.Query(after, f, standupEvents))
	if err != nil {
		return "", err
	}
	scope := "the whole hub"
	if project != "" {
		scope = fmt.Sprintf("project %q", project)
	}
	if assignee != "" {
		scope += fmt.Sprintf(", for %s", assignee)
	}
	from := since.UTC().Format(time.RFC3339)
	if len(records) == 0 {
		return fmt.Sprintf("Nothing happened in %s since %s: TaskHub's event log has no events for it. Say so in one line, and name what is still open there (list_tasks) if anything is.", scope, from), nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, `Write a short standup for %s, from %s until now, from TaskHub's event log below (%d events). Say what was finished, what is in progress and by whom, what is blocked or waiting and why, and what comes next; cite task ids. get_task, list_notes and list_events give more detail.

`, scope, from, len(records))
	if len(records) == standupEvents {
		fmt.Fprintf(&b, "(These are the first %d events since then; list_events with after %d gives the rest.)\n\n", standupEvents, last)
	}
	b.WriteString(summarize(records))
	return b.String(), nil
}

// summarize lists what happened to each task, in the order they first appear.
func summarize(records []tasks.Record) string {
	type story struct {
		id                      int64
		title, status, assignee string
		lines                   []string
		others                  map[string]int // events of other types, counted
	}
	var stories []*story
	byID := map[int64]*story{}
	files := 0
	for _, r := range records {
		var e logEvent
		if err := json.Unmarshal(r.Data, &e); err != nil {
			continue // the log's JSON is this server's own
		}
		if e.TaskID == 0 {
			files++
			continue
		}
		st := byID[e.TaskID]
		if st == nil {
			st = &story{id: e.TaskID, others: map[string]int{}}
			byID[e.TaskID] = st
			stories = append(stories, st)
		}
		if e.Task != nil {
			st.title, st.status, st.assignee = e.Task.Title, e.Task.Status, e.Task.Assignee
		}
		at := e.Time.UTC().Format("2006-01-02 15:04Z")
		switch tasks.EventType(e.Type) {
		case tasks.EventTaskCreated:
			st.lines = append(st.lines, fmt.Sprintf("%s created by %s", at, e.Actor))
		case tasks.EventTaskDeleted:
			st.lines = append(st.lines, fmt.Sprintf("%s deleted by %s", at, e.Actor))
		case tasks.EventTaskUpdated:
			st.lines = append(st.lines, fmt.Sprintf("%s %s by %s%s", at, describeChanges(e.Changes, e.Reason), e.Actor, noteOf(e.Note)))
		default:
			if text := noteOf(e.Note); text != "" {
				st.lines = append(st.lines, fmt.Sprintf("%s %s by %s%s", at, strings.ReplaceAll(e.Type, "_", " "), e.Actor, text))
			} else {
				st.others[e.Type]++
			}
		}
	}
	var b strings.Builder
	for _, st := range stories {
		fmt.Fprintf(&b, "#%d %q (now %s", st.id, st.title, st.status)
		if st.assignee != "" {
			fmt.Fprintf(&b, ", assigned to %s", st.assignee)
		}
		b.WriteString(")\n")
		for _, l := range st.lines {
			fmt.Fprintf(&b, "  - %s\n", l)
		}
		for _, typ := range slices.Sorted(maps.Keys(st.others)) {
			fmt.Fprintf(&b, "  - %d × %s\n", st.others[typ], typ)
		}
	}
	if files > 0 {
		fmt.Fprintf(&b, "and %d events without a task (files changed)\n", files)
	}
	return b.String()
}

// describeChanges words an update: status and assignee with their old and new
// values, the other fields by name, but for the lease, which moves with a claim, a
// release and the status and says nothing of its own.
func describeChanges(changes map[string][2]json.RawMessage, reason string) string {
	var parts, fields []string
	for _, name := range []string{"status", "assignee"} {
		if c, ok := changes[name]; ok {
			var from, to string
			_ = json.Unmarshal(c[0], &from)
			_ = json.Unmarshal(c[1], &to)
			parts = append(parts, fmt.Sprintf("%s %s → %s", name, orNobody(from), orNobody(to)))
		}
	}
	for name := range changes {
		if name != "status" && name != "assignee" && name != "lease_expires_at" {
			fields = append(fields, name)
		}
	}
	if len(fields) > 0 {
		slices.Sort(fields)
		parts = append(parts, strings.Join(fields, ", ")+" changed")
	}
	if len(parts) == 0 {
		parts = append(parts, "updated")
	}
	text := strings.Join(parts, "; ")
	if reason != "" {
		text += " (" + strings.ReplaceAll(reason, "_", " ") + ")"
	}
	return text
}

func orNobody(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

// noteOf returns ": "text"" for the note of an event (a change's note, or a note
// object's text), cut to 300 characters, or "" when it has none.
func noteOf(raw json.RawMessage) string {
	var text string
	if json.Unmarshal(raw, &text) != nil {
		var note struct {
			Text string `json:"text"`
		}
		if json.Unmarshal(raw, &note) != nil {
			return ""
		}
		text = note.Text
	}
	if text == "" {
		return ""
	}
	if r := []rune(text); len(r) > 300 {
		text = string(r[:300]) + "…"
	}
	return fmt.Sprintf(": %q", text)
}

func (s *Server) handoffPrompt(ctx context.Context, args map[string]string) (string, error) {
	id, err := strconv.ParseInt(args["task_id"], 10, 64)
	if err != nil || id < 1 {
		return "", tasks.Errorf(tasks.EInvalid, "task_id", "task_id must be a task's id, got %q", args["task_id"])
	}
	t, err := s.svc.Get(ctx, id)
	if err != nil {
		return "", withField(err, "task_id")
	}
	task, err := json.Marshal(t)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Hand task #%d %q over to the next agent. The task as it stands:\n\n%s\n\n", t.ID, t.Title, task)
	me := tasks.ActorFrom(s.actor(ctx)).Name
	if t.Assignee != "" && t.Assignee != me {
		fmt.Fprintf(&b, "It is held by %s, not by you (%s): only its holder can release it. Leave your note with add_note instead, and tell the user.\n\n", t.Assignee, me)
	}
	fmt.Fprintf(&b, `1. Read the notes already on it (list_notes with task_id %[1]d), so as not to repeat them.
2. Write a note for whoever takes it next: what is done, what is left, how to check the work, what to watch out for, and where the work is (branch, files, commands).
3. Call release_task with task_id %[1]d and that note. The task goes back to todo, unassigned, for the next agent to claim, and the note stays on it. Do not mark it done.`, t.ID)
	return b.String(), nil
}

// completions completes the arguments of the prompts that name a ValueField
// (project, label, assignee, task_id), and the id of the task resource template,
// from the tasks.
type completions struct{ s *Server }

// CompletePromptArgument implements server.PromptCompletionProvider.
func (c completions) CompletePromptArgument(ctx context.Context, name string, arg mcp.CompleteArgument, _ mcp.CompleteContext) (*mcp.Completion, error) {
	field := tasks.ValueField(arg.Name)
	if !slices.Contains(tasks.ValueFields, field) || !slices.ContainsFunc(c.s.prompts(), func(p prompt) bool {
		return p.name == name && slices.ContainsFunc(p.args, func(a promptArg) bool { return a.name == arg.Name })
	}) {
		return &mcp.Completion{Values: []string{}}, nil
	}
	return c.values(ctx, field, arg.Value)
}

// CompleteResourceArgument implements server.ResourceCompletionProvider.
func (c completions) CompleteResourceArgument(ctx context.Context, uri string, arg mcp.CompleteArgument, _ mcp.CompleteContext) (*mcp.Completion, error) {
	if uri != taskURIPrefix+"{id}" || arg.Name != "id" {
		return &mcp.Completion{Values: []string{}}, nil
	}
	return c.values(ctx, tasks.FieldTaskID, arg.Value)
}

func (c completions) values(ctx context.Context, field tasks.ValueField, prefix string) (*mcp.Completion, error) {
	values, err := c.s.svc.Values(ctx, field, prefix, tasks.MaxValuesLimit)
	if err != nil {
		c.s.logger.Error("complete", "field", field, "err", err)
		return nil, fmt.Errorf("internal error: no completions")
	}
	return &mcp.Completion{Values: values, HasMore: len(values) == tasks.MaxValuesLimit}, nil
}

var (
	_ server.PromptCompletionProvider   = completions{}
	_ server.ResourceCompletionProvider = completions{}
)

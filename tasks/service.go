package tasks

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ReadyQuery selects among the tasks ready for Caller. Both ways of claiming hold to
// one rule (by id, checked by claimable; the next, chosen by Tx.NextReady): a task is
// ready for a caller when it is todo, every task it depends on is done, and it is
// unassigned or assigned to that caller already (put on their list, where nobody else
// may take it). "Claim next" takes the ready task of highest priority (see
// Priorities: the later, the higher), then the oldest, then the lowest id. An empty
// Project or Label matches every task.
type ReadyQuery struct {
	Caller  string
	Project string
	Label   string
}

// TaskQuery selects tasks for a Store.
type TaskQuery struct {
	Statuses []Status
	Assignee string
	Project  string
	Label    string
	ParentID *int64
	Text     string
	After    int64
	Limit    int
}

// EventQuery selects events for a Store: up to Limit events with a seq above After.
// Each list that is not empty must share a value with the event's (OR within a list,
// AND across them), as the stream's filters do: Assignees, Projects, Statuses and
// Labels match the event's Match, so an update matches on the task's values from
// before the change too. An event without a task matches none of those, nor TaskIDs.
type EventQuery struct {
	After     int64
	TaskIDs   []int64
	Types     []EventType
	Sources   []Source
	Assignees []string
	Projects  []string
	Statuses  []Status
	Labels    []string
	Limit     int
}

// Filter is what a caller asks of List: the TaskQuery fields, with an opaque cursor
// from a previous Page instead of a raw id. Limit must be 1 to MaxListLimit; adapters
// use DefaultListLimit when their caller gives none.
type Filter struct {
	Statuses []Status
	Assignee string
	Project  string
	Label    string
	ParentID *int64
	Text     string
	Cursor   string
	Limit    int
}

// Page is one page of List. NextCursor is empty on the last page.
type Page struct {
	Tasks      []*Task `json:"tasks"`
	NextCursor string  `json:"next_cursor"`
}

// Limits of a list call.
const (
	DefaultListLimit   = 50
	MaxListLimit       = 500
	DefaultEventsLimit = 100
	MaxEventsLimit     = 1000
	MaxTextQuery       = 200
)

// Service carries out every read and change of tasks, with all of their rules. REST and
// MCP both call it; neither checks anything it checks.
type Service struct {
	store Store
	now   func() time.Time
	lease time.Duration // the lease of a claim that asks for none
}

// Option configures a Service.
type Option func(*Service)

// NewService returns a Service over store.
func NewService(store Store, opts ...Option) *Service {
	s := &Service{store: store, now: time.Now, lease: DefaultClaimLease}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Get returns the task with id.
func (s *Service) Get(ctx context.Context, id int64) (*Task, error) {
	return s.store.Task(ctx, id)
}

// List returns a page of the tasks that match f, oldest first. A task created while a
// caller pages through appears on a later page; none is skipped or repeated.
func (s *Service) List(ctx context.Context, f Filter) (Page, error) {
	q := TaskQuery{
		Statuses: f.Statuses, Assignee: f.Assignee, Project: f.Project, Label: f.Label,
		ParentID: f.ParentID, Text: f.Text, Limit: f.Limit,
	}
	if q.Limit < 1 || q.Limit > MaxListLimit {
		return Page{}, Errorf(EInvalid, "limit", "limit must be 1 to %d, got %d", MaxListLimit, q.Limit)
	}
	if len(q.Text) > MaxTextQuery {
		return Page{}, Errorf(EInvalid, "q", "q must be at most %d bytes", MaxTextQuery)
	}
	if f.Cursor != "" {
		after, err := decodeCursor(f.Cursor)
		if err != nil {
			return Page{}, err
		}
		q.After = after
	}
	q.Limit++ // one more, to learn whether there is a next page
	tasks, err := s.store.Tasks(ctx, q)
	if err != nil {
		return Page{}, fmt.Errorf("list tasks: %w", err)
	}
	page := Page{Tasks: tasks}
	if len(tasks) == q.Limit {
		page.Tasks = tasks[:len(tasks)-1]
		page.NextCursor = encodeCursor(page.Tasks[len(page.Tasks)-1].ID)
	}
	return page, nil
}

// A cursor is the last id of a page, base64-encoded behind a version prefix so that the
// encoding can change without breaking clients that treat it as opaque.
const cursorPrefix = "c1:"

func encodeCursor(id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + strconv.FormatInt(id, 10)))
}

func decodeCursor(c string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil {
		if s, ok := strings.CutPrefix(string(b), cursorPrefix); ok {
			if id, err := strconv.ParseInt(s, 10, 64); err == nil && id >= 0 {
				return id, nil
			}
		}
	}
	return 0, Errorf(EInvalid, "cursor", "cursor is not one this server returned")
}

// Create makes a task from u: unset fields take their defaults (status todo, priority
// medium), and the title is required.
func (s *Service) Create(ctx context.Context, u Update) (*Task, error) {
	actor := ActorFrom(ctx)
	t := &Task{
		Status: StatusTodo, Priority: PriorityMedium, Labels: []string{}, DependsOn: []int64{},
		Version: 1, CreatedBy: actor.Name, UpdatedBy: actor.Name,
	}
	if err := u.apply(t); err != nil {
		return nil, err
	}
	err := s.store.Write(ctx, func(tx Tx) error {
		if err := checkParent(tx, t); err != nil {
			return err
		}
		if err := checkDependencies(tx, t); err != nil {
			return err
		}
		t.CreatedAt = NewTime(s.now())
		t.UpdatedAt = t.CreatedAt
		if err := tx.CreateTask(t); err != nil {
			return err
		}
		return tx.AppendEvent(&Event{
			Type: EventTaskCreated, TaskID: t.ID, Source: actor.Source, Actor: actor.Name,
			Time: t.CreatedAt, Task: t,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("create task: %w", err)
	}
	return t, nil
}

// Update applies u to the task with id. With ifVersion above 0 the task must be at that
// version, else the result is an EPreconditionFailed error. An update that changes
// nothing returns the task as it is: no new version, no event.
func (s *Service) Update(ctx context.Context, id, ifVersion int64, u Update) (*Task, error) {
	return s.changeIf(ctx, id, u, "update", func(old *Task, _ Actor) error { return checkVersion(old, ifVersion) })
}

// changeIf applies u to the task with id, in one write, if check passes on the task
// as it is: what says what the change does, for its error.
func (s *Service) changeIf(ctx context.Context, id int64, u Update, what string, check func(old *Task, actor Actor) error) (*Task, error) {
	actor := ActorFrom(ctx)
	var t *Task
	err := s.store.Write(ctx, func(tx Tx) error {
		old, err := tx.Task(id)
		if err != nil {
			return err
		}
		if err := check(old, actor); err != nil {
			return err
		}
		t, err = s.change(tx, old, u, actor)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s task %d: %w", what, id, err)
	}
	return t, nil
}

// change applies u to old inside tx, stores the result and appends its event; it
// returns old itself when u changes nothing.
func (s *Service) change(tx Tx, old *Task, u Update, actor Actor) (*Task, error) {
	return s.changeFor(tx, old, u, actor, cause{})
}

// changeFor is change for a change that c says more of: a claim's lease, the
// system's reason.
func (s *Service) changeFor(tx Tx, old *Task, u Update, actor Actor, c cause) (*Task, error) {
	next := old.clone()
	if err := u.apply(next); err != nil {
		return nil, err
	}
	now := s.now()
	leaseRules(next, c, now)
	changes, err := diff(old, next)
	if err != nil {
		return nil, err
	}
	if len(changes) == 0 {
		if u.Note != "" { // it would be lost: a note lives on the event of a change
			return nil, Errorf(EInvalid, "note", "task %d already has these values, so there is no change to note", old.ID)
		}
		return old, nil
	}
	if _, ok := changes["parent_id"]; ok {
		if err := checkParent(tx, next); err != nil {
			return nil, err
		}
	}
	if _, ok := changes["depends_on"]; ok {
		if err := checkDependencies(tx, next); err != nil {
			return nil, err
		}
	}
	if renew(old, next, actor, now) {
		if changes, err = diff(old, next); err != nil {
			return nil, err
		}
	}
	next.Version++
	next.UpdatedAt = NewTime(now)
	next.UpdatedBy = actor.Name
	if err := tx.UpdateTask(old, next); err != nil {
		return nil, err
	}
	err = tx.AppendEvent(&Event{
		Type: EventTaskUpdated, TaskID: old.ID, Source: actor.Source, Actor: actor.Name,
		Time: next.UpdatedAt, Task: next, Changes: changes, Note: u.Note, Reason: c.reason, before: old,
	})
	if err != nil {
		return nil, err
	}
	return next, nil
}

// ClaimRequest says which task Claim takes: the one with TaskID, or, when TaskID is 0,
// the next ready task within Project and Label (empty matches every one).
type ClaimRequest struct {
	TaskID  int64
	Project string
	Label   string
	// LeaseSeconds, when set, is the length of the claim's lease, MinLeaseSeconds to
	// MaxLeaseSeconds; else the Service's (WithClaimLease).
	LeaseSeconds Field[int64]
}

// Claim assigns a task to the actor of ctx and sets it in_progress, in one write, so
// that two callers never get the same task. With req.TaskID the task must be ready
// for the caller (see Ready); otherwise the error says why (EConflict). Without it,
// Claim takes the first ready task by priority, then age (see Tx.NextReady), and
// returns an ENotFound error when none is ready. The claim gives the caller a lease
// on the task (see lease.go).
func (s *Service) Claim(ctx context.Context, req ClaimRequest) (*Task, error) {
	actor := ActorFrom(ctx)
	if actor.Name == "" {
		return nil, Errorf(EInvalid, "assignee", "a claim needs a named caller to assign the task to")
	}
	if req.TaskID < 0 {
		return nil, Errorf(EInvalid, "task_id", "task_id must be positive, got %d", req.TaskID)
	}
	lease, err := s.leaseOf(req)
	if err != nil {
		return nil, err
	}
	var t *Task
	err = s.store.Write(ctx, func(tx Tx) error {
		var old *Task
		var err error
		if req.TaskID != 0 {
			if old, err = tx.Task(req.TaskID); err != nil {
				return err
			}
			if err := claimable(tx, old, actor.Name); err != nil {
				return err
			}
			if req.Project != "" && old.Project != req.Project {
				return Errorf(EConflict, "project", "task %d is in project %q, not %q", old.ID, old.Project, req.Project)
			}
			if req.Label != "" && !slices.Contains(old.Labels, req.Label) {
				return Errorf(EConflict, "label", "task %d has no label %q", old.ID, req.Label)
			}
		} else {
			if old, err = tx.NextReady(ReadyQuery{Caller: actor.Name, Project: req.Project, Label: req.Label}); err != nil {
				return err
			}
			if old == nil {
				return Errorf(ENotFound, "", "no task is ready to claim%s", scope(req))
			}
		}
		t, err = s.changeFor(tx, old, Update{Assignee: Value(actor.Name), Status: Value(StatusInProgress)}, actor, cause{lease: lease})
		return err
	})
	if err != nil {
		if req.TaskID != 0 {
			return nil, fmt.Errorf("claim task %d: %w", req.TaskID, err)
		}
		return nil, fmt.Errorf("claim a task: %w", err)
	}
	return t, nil
}

// claimable checks that t is ready for name (see ReadyQuery), and if not says why.
func claimable(tx Tx, t *Task, name string) error {
	if t.Assignee != "" && t.Assignee != name {
		return Errorf(EConflict, "task_id", "task %d is already claimed by %s", t.ID, t.Assignee)
	}
	if t.Status != StatusTodo {
		return Errorf(EConflict, "task_id", "task %d is %s, and only a todo task can be claimed", t.ID, t.Status)
	}
	var waiting []string
	for _, id := range t.DependsOn {
		dep, err := tx.Task(id)
		if err != nil {
			return err
		}
		if dep.Status != StatusDone {
			waiting = append(waiting, fmt.Sprintf("%d (%s)", id, dep.Status))
		}
	}
	if len(waiting) > 0 {
		return Errorf(EConflict, "task_id", "task %d is not ready: it depends on task %s, not done yet", t.ID, strings.Join(waiting, ", "))
	}
	return nil
}

func scope(req ClaimRequest) string {
	var parts []string
	if req.Project != "" {
		parts = append(parts, fmt.Sprintf("project %q", req.Project))
	}
	if req.Label != "" {
		parts = append(parts, fmt.Sprintf("label %q", req.Label))
	}
	if len(parts) == 0 {
		return ""
	}
	return " in " + strings.Join(parts, " with ")
}

// Delete removes the task with id, and its notes, checked against ifVersion as in
// Update. A task that others depend on or that has subtasks is not deleted (EConflict):
// removing it would silently change them.
func (s *Service) Delete(ctx context.Context, id, ifVersion int64) error {
	actor := ActorFrom(ctx)
	err := s.store.Write(ctx, func(tx Tx) error {
		old, err := tx.Task(id)
		if err != nil {
			return err
		}
		if err := checkVersion(old, ifVersion); err != nil {
			return err
		}
		dependents, children, err := tx.Dependents(id)
		if err != nil {
			return err
		}
		if len(dependents) > 0 {
			return Errorf(EConflict, "", "task %d cannot be deleted: %s on it", id, countIDs(dependents, "task %s depends", "tasks %s depend"))
		}
		if len(children) > 0 {
			return Errorf(EConflict, "", "task %d cannot be deleted: it is the parent of %s", id, countIDs(children, "task %s", "tasks %s"))
		}
		notes, err := tx.CountNotes(id)
		if err != nil {
			return err
		}
		if err := tx.DeleteTask(id); err != nil {
			return err
		}
		return tx.AppendEvent(&Event{
			Type: EventTaskDeleted, TaskID: id, Source: actor.Source, Actor: actor.Name,
			Time: NewTime(s.now()), Task: old, NotesDeleted: &notes,
		})
	})
	if err != nil {
		return fmt.Errorf("delete task %d: %w", id, err)
	}
	return nil
}

// TaskEvents returns the history of the task with id, oldest first, also after it was
// deleted. A task that never existed is an ENotFound error.
func (s *Service) TaskEvents(ctx context.Context, id int64) ([]Record, error) {
	var all []Record
	q := EventQuery{TaskIDs: []int64{id}, Limit: MaxEventsLimit}
	for {
		events, err := s.store.Events(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("events of task %d: %w", id, err)
		}
		all = append(all, events...)
		if len(events) < q.Limit {
			break
		}
		q.After = events[len(events)-1].Seq
	}
	if len(all) == 0 {
		return nil, Errorf(ENotFound, "", "task %d not found", id)
	}
	return all, nil
}

// Events returns up to limit events (1 to MaxEventsLimit) after seq after, and the seq
// to pass as after next time: the last returned, or where the log ends.
func (s *Service) Events(ctx context.Context, after int64, limit int) ([]Record, int64, error) {
	return s.EventsFor(ctx, EventQuery{After: after, Limit: limit})
}

// EventsFor is Events narrowed by the filters of q (its After and Limit are those
// of Events), each checked like the arguments of Events.
func (s *Service) EventsFor(ctx context.Context, q EventQuery) ([]Record, int64, error) {
	if err := q.check(); err != nil {
		return nil, 0, err
	}
	// Where the log ends is read first: an event committed after it is above it, so
	// a caller that goes on from there, having got no events, cannot step over one.
	last, err := s.store.LastSeq(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("list events: %w", err)
	}
	events, err := s.store.Events(ctx, q)
	if err != nil {
		return nil, 0, fmt.Errorf("list events: %w", err)
	}
	if len(events) > 0 {
		return events, events[len(events)-1].Seq, nil
	}
	return []Record{}, last, nil
}

// check checks the arguments of an events query.
func (q EventQuery) check() error {
	switch {
	case q.After < 0:
		return Errorf(EInvalid, "after", "after must not be negative")
	case q.Limit < 1 || q.Limit > MaxEventsLimit:
		return Errorf(EInvalid, "limit", "limit must be 1 to %d, got %d", MaxEventsLimit, q.Limit)
	}
	for _, id := range q.TaskIDs {
		if id < 1 {
			return Errorf(EInvalid, "task_id", "task_id must be positive, got %d", id)
		}
	}
	if err := among("types", q.Types, EventTypes); err != nil {
		return err
	}
	if err := among("source", q.Sources, Sources); err != nil {
		return err
	}
	if err := among("status", q.Statuses, Statuses); err != nil {
		return err
	}
	for _, l := range []struct {
		field  string
		values []string
		max    int
	}{{"assignee", q.Assignees, MaxAssignee}, {"project", q.Projects, MaxProject}, {"label", q.Labels, MaxLabel}} {
		for _, v := range l.values {
			if utf8.RuneCountInString(v) > l.max {
				return Errorf(EInvalid, l.field, "%s must be at most %d characters", l.field, l.max)
			}
		}
	}
	return nil
}

// among checks that every one of values is in known, the field's vocabulary.
func among[S ~string](field string, values, known []S) error {
	for _, v := range values {
		if !slices.Contains(known, v) {
			return Errorf(EInvalid, field, "%s must be among %s, got %q", field, join(known), v)
		}
	}
	return nil
}

func checkVersion(t *Task, ifVersion int64) error {
	if ifVersion > 0 && t.Version != ifVersion {
		return Errorf(EPreconditionFailed, "", "task %d is at version %d, not %d", t.ID, t.Version, ifVersion)
	}
	return nil
}

// checkParent checks that t's parent exists and that t is not among its ancestors.
func checkParent(tx Tx, t *Task) error {
	if t.ParentID == nil {
		return nil
	}
	seen := map[int64]bool{}
	for id := *t.ParentID; ; {
		p, err := tx.Task(id)
		if ErrorCode(err) == ENotFound {
			return Errorf(EInvalid, "parent_id", "parent task %d does not exist", id)
		} else if err != nil {
			return err
		}
		if p.ParentID == nil || seen[id] {
			return nil
		}
		seen[id] = true
		if *p.ParentID == t.ID {
			return Errorf(EInvalid, "parent_id", "task %d is an ancestor of parent task %d", t.ID, *t.ParentID)
		}
		id = *p.ParentID
	}
}

// checkDependencies checks that every task t depends on exists and that none of them
// depends on t, directly or not.
func checkDependencies(tx Tx, t *Task) error {
	if len(t.DependsOn) == 0 {
		return nil
	}
	missing, err := tx.Missing(t.DependsOn)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return Errorf(EInvalid, "depends_on", "depends_on names tasks that do not exist: %s", joinIDs(missing))
	}
	if t.ID == 0 {
		return nil // a new task: nothing can depend on it yet
	}
	// Walk the dependency graph breadth first from t's dependencies, remembering how
	// each task was reached so the error can show the cycle.
	via := map[int64]int64{}
	frontier := slices.Clone(t.DependsOn)
	for _, id := range frontier {
		via[id] = t.ID
	}
	for len(frontier) > 0 {
		deps, err := tx.Dependencies(frontier)
		if err != nil {
			return err
		}
		var next []int64
		for _, from := range frontier {
			for _, to := range deps[from] {
				if to == t.ID {
					return Errorf(EInvalid, "depends_on", "depends_on would make a cycle: %s", cycle(via, from, t.ID))
				}
				if _, seen := via[to]; !seen {
					via[to] = from
					next = append(next, to)
				}
			}
		}
		frontier = next
	}
	return nil
}

// cycle renders the path start → … → last → start found by checkDependencies.
func cycle(via map[int64]int64, last, start int64) string {
	path := []int64{start}
	for id := last; id != start; id = via[id] {
		path = append(path, id)
	}
	path = append(path, start)
	slices.Reverse(path[1 : len(path)-1])
	parts := make([]string, len(path))
	for i, id := range path {
		parts[i] = strconv.FormatInt(id, 10)
	}
	return strings.Join(parts, " → ")
}

// countIDs formats ids into one or many, whichever agrees with their number.
func countIDs(ids []int64, one, many string) string {
	if len(ids) == 1 {
		return fmt.Sprintf(one, joinIDs(ids))
	}
	return fmt.Sprintf(many, joinIDs(ids))
}

func joinIDs(ids []int64) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.FormatInt(id, 10)
	}
	return strings.Join(parts, ", ")
}

func (t *Task) clone() *Task {
	c := *t
	c.Labels = slices.Clone(t.Labels)
	c.DependsOn = slices.Clone(t.DependsOn)
	return &c
}

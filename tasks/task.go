// Package tasks is TaskHub's domain: tasks, their events, the rules every change must
// follow and the Service that every adapter (REST, MCP) calls. It knows nothing of HTTP
// or SQL; a Store implementation persists what the Service decides.
package tasks

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Status is where a task stands.
type Status string

// The statuses a task can have.
const (
	StatusTodo       Status = "todo"
	StatusInProgress Status = "in_progress"
	StatusReview     Status = "review"
	StatusBlocked    Status = "blocked"
	StatusDone       Status = "done"
	StatusCancelled  Status = "cancelled"
)

// Statuses lists every status in board order.
var Statuses = []Status{StatusTodo, StatusInProgress, StatusReview, StatusBlocked, StatusDone, StatusCancelled}

// Priority orders tasks that are otherwise equal.
type Priority string

// The priorities a task can have, lowest first.
const (
	PriorityLow    Priority = "low"
	PriorityMedium Priority = "medium"
	PriorityHigh   Priority = "high"
	PriorityUrgent Priority = "urgent"
)

// Priorities lists every priority, lowest first.
var Priorities = []Priority{PriorityLow, PriorityMedium, PriorityHigh, PriorityUrgent}

// Limits of the contract, in characters unless said otherwise.
const (
	MaxTitle          = 200
	MaxDescriptionLen = 64 << 10 // bytes
	MaxLabels         = 20
	MaxLabel          = 50
	MaxProject        = 100
	MaxAssignee       = 100
	MaxDependsOn      = 100
	MaxNote           = 2000 // the note of a change (Update.Note)
)

// Task is the unit of work TaskHub tracks.
type Task struct {
	ID          int64    `json:"id"`
	Title       string   `json:"title"`
	Description string   `json:"description"`
	Status      Status   `json:"status"`
	Priority    Priority `json:"priority"`
	Assignee    string   `json:"assignee"`
	Project     string   `json:"project"`
	Labels      []string `json:"labels"`
	ParentID    *int64   `json:"parent_id"`
	DependsOn   []int64  `json:"depends_on"`
	DueAt       *Time    `json:"due_at"`
	Version     int64    `json:"version"`
	CreatedAt   Time     `json:"created_at"`
	UpdatedAt   Time     `json:"updated_at"`
	CreatedBy   string   `json:"created_by"`
	UpdatedBy   string   `json:"updated_by"`
	// The claim and the work on it (see lease.go): when the holder's lease runs out
	// (nil without one), and how far the work is, 0 to 100, in a line of words.
	LeaseExpiresAt  *Time  `json:"lease_expires_at"`
	Progress        int    `json:"progress"`
	ProgressMessage string `json:"progress_message"`
	// LeaseLength is the length of the claim's lease, by which a renewal extends it.
	// The store keeps it; the wire does not show it.
	LeaseLength time.Duration `json:"-"`
}

// Time is a UTC instant kept to the microsecond. It marshals as RFC 3339 with exactly
// six fractional digits, so every timestamp has the same shape and sorts as text.
type Time struct{ time.Time }

// TimeLayout is the layout of a marshalled Time.
const TimeLayout = "2006-01-02T15:04:05.000000Z07:00"

// NewTime returns t in UTC, truncated to the microsecond.
func NewTime(t time.Time) Time { return Time{t.UTC().Truncate(time.Microsecond)} }

// String formats t with TimeLayout.
func (t Time) String() string { return t.Time.UTC().Format(TimeLayout) }

// MarshalJSON implements json.Marshaler.
func (t Time) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, len(TimeLayout)+2)
	b = append(b, '"')
	b = t.Time.UTC().AppendFormat(b, TimeLayout)
	return append(b, '"'), nil
}

// UnmarshalJSON accepts any RFC 3339 time and normalises it like NewTime.
func (t *Time) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || !rfc3339Offset(s) {
		return fmt.Errorf("not an RFC 3339 time: %q", s)
	}
	*t = NewTime(v)
	return nil
}

// rfc3339Offset reports whether the offset that ends s, a time that time.Parse took
// as RFC 3339, is one RFC 3339 allows: Z, or hours 00–23 and minutes 00–59. time.Parse
// also takes +24:00 and a minute of 60.
func rfc3339Offset(s string) bool {
	if strings.HasSuffix(s, "Z") {
		return true
	}
	off := s[len(s)-len("+07:00"):]
	return off[1:3] <= "23" && off[4:6] <= "59"
}

// Field is one optional value of an Update: Set reports whether the caller gave it.
type Field[T any] struct {
	Set   bool
	Value T
}

// Value returns a Field that is set to v.
func Value[T any](v T) Field[T] { return Field[T]{Set: true, Value: v} }

// Update is a change to a task, and also the input that creates one: only the fields
// that are Set change. Clearing an optional field is setting it to its zero value
// (nil for ParentID and DueAt).
type Update struct {
	Title       Field[string]
	Description Field[string]
	Status      Field[Status]
	Priority    Field[Priority]
	Assignee    Field[string]
	Project     Field[string]
	Labels      Field[[]string]
	ParentID    Field[*int64]
	DependsOn   Field[[]int64]
	DueAt       Field[*Time]
	// Progress and ProgressMessage report how far the work is (see lease.go).
	Progress        Field[int]
	ProgressMessage Field[string]
	// Note, when not empty, is recorded on the event of the change (why it was made,
	// say); it is not part of the task, and an update that changes nothing drops it.
	Note string
}

// apply sets the fields of u on t, normalised (trimmed title, sorted unique labels and
// dependencies) and checked against the rules that need no other task. Rules that look
// at other tasks (existence, cycles) are checked by the Service inside the transaction.
func (u Update) apply(t *Task) error {
	if n := utf8.RuneCountInString(u.Note); n > MaxNote {
		return Errorf(EInvalid, "note", "note must be at most %d characters, got %d", MaxNote, n)
	}
	if u.Title.Set {
		t.Title = strings.TrimSpace(u.Title.Value)
	}
	if u.Description.Set {
		t.Description = u.Description.Value
	}
	if u.Status.Set {
		t.Status = u.Status.Value
	}
	if u.Priority.Set {
		t.Priority = u.Priority.Value
	}
	if u.Assignee.Set {
		t.Assignee = strings.TrimSpace(u.Assignee.Value)
	}
	if u.Project.Set {
		t.Project = strings.TrimSpace(u.Project.Value)
	}
	if u.Labels.Set {
		labels := make([]string, len(u.Labels.Value))
		for i, l := range u.Labels.Value {
			labels[i] = strings.TrimSpace(l)
		}
		slices.Sort(labels)
		t.Labels = slices.Compact(labels)
	}
	if u.ParentID.Set {
		t.ParentID = u.ParentID.Value
	}
	if u.DependsOn.Set {
		deps := append([]int64{}, u.DependsOn.Value...)
		slices.Sort(deps)
		t.DependsOn = slices.Compact(deps)
	}
	if u.DueAt.Set {
		t.DueAt = u.DueAt.Value
		if t.DueAt != nil {
			d := NewTime(t.DueAt.Time)
			t.DueAt = &d
		}
	}
	if u.Progress.Set {
		t.Progress = u.Progress.Value
	}
	if u.ProgressMessage.Set {
		t.ProgressMessage = strings.TrimSpace(u.ProgressMessage.Value)
	}
	return t.validate()
}

// validate checks every rule of a task that needs no other task.
func (t *Task) validate() error {
	if t.Title == "" {
		return Errorf(EInvalid, "title", "title must not be empty")
	}
	if n := utf8.RuneCountInString(t.Title); n > MaxTitle {
		return Errorf(EInvalid, "title", "title must be at most %d characters, got %d", MaxTitle, n)
	}
	if len(t.Description) > MaxDescriptionLen {
		return Errorf(EInvalid, "description", "description must be at most %d bytes, got %d", MaxDescriptionLen, len(t.Description))
	}
	if !slices.Contains(Statuses, t.Status) {
		return Errorf(EInvalid, "status", "status must be one of %s, got %q", join(Statuses), t.Status)
	}
	if !slices.Contains(Priorities, t.Priority) {
		return Errorf(EInvalid, "priority", "priority must be one of %s, got %q", join(Priorities), t.Priority)
	}
	if n := utf8.RuneCountInString(t.Assignee); n > MaxAssignee {
		return Errorf(EInvalid, "assignee", "assignee must be at most %d characters, got %d", MaxAssignee, n)
	}
	if n := utf8.RuneCountInString(t.Project); n > MaxProject {
		return Errorf(EInvalid, "project", "project must be at most %d characters, got %d", MaxProject, n)
	}
	if len(t.Labels) > MaxLabels {
		return Errorf(EInvalid, "labels", "at most %d labels are allowed, got %d", MaxLabels, len(t.Labels))
	}
	for _, l := range t.Labels {
		if n := utf8.RuneCountInString(l); n < 1 || n > MaxLabel {
			return Errorf(EInvalid, "labels", "each label must be 1 to %d characters, got %q", MaxLabel, l)
		}
	}
	// A new task has no id yet (0): its parent and dependencies are checked for
	// existence instead, which gives the right message for 0.
	if t.ID != 0 && t.ParentID != nil && *t.ParentID == t.ID {
		return Errorf(EInvalid, "parent_id", "a task cannot be its own parent")
	}
	if len(t.DependsOn) > MaxDependsOn {
		return Errorf(EInvalid, "depends_on", "at most %d dependencies are allowed, got %d", MaxDependsOn, len(t.DependsOn))
	}
	if t.ID != 0 && slices.Contains(t.DependsOn, t.ID) {
		return Errorf(EInvalid, "depends_on", "a task cannot depend on itself")
	}
	return t.validateProgress()
}

// ParseStatus returns the Status named s, or an invalid_argument error for field.
func ParseStatus(field, s string) (Status, error) {
	if st := Status(s); slices.Contains(Statuses, st) {
		return st, nil
	}
	return "", Errorf(EInvalid, field, "%s must be one of %s, got %q", field, join(Statuses), s)
}

// ParsePriority returns the Priority named s, or an invalid_argument error for field.
func ParsePriority(field, s string) (Priority, error) {
	if p := Priority(s); slices.Contains(Priorities, p) {
		return p, nil
	}
	return "", Errorf(EInvalid, field, "%s must be one of %s, got %q", field, join(Priorities), s)
}

func join[S ~string](values []S) string {
	s := make([]string, len(values))
	for i, v := range values {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}

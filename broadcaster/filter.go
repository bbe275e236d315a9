package broadcaster

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Vocabulary is the values a filter may name: anything else is refused, since a
// misspelt type or status would otherwise match nothing, silently.
type Vocabulary struct {
	Types    []string
	Statuses []string
	Sources  []string
}

// Filter selects events. Each list that is not empty must share a value with the
// event's (OR within a list); all of them must (AND across lists).
type Filter struct {
	Types     []string `json:"types,omitempty"`
	TaskIDs   []int64  `json:"task_id,omitempty"`
	Assignees []string `json:"assignee,omitempty"`
	Projects  []string `json:"project,omitempty"`
	Statuses  []string `json:"status,omitempty"`
	Labels    []string `json:"label,omitempty"`
	Sources   []string `json:"source,omitempty"`
}

// Match reports whether e passes f.
func (f *Filter) Match(e *Event) bool {
	return (len(f.Types) == 0 || slices.Contains(f.Types, e.Type)) &&
		(len(f.TaskIDs) == 0 || slices.Contains(f.TaskIDs, e.TaskID)) &&
		(len(f.Sources) == 0 || slices.Contains(f.Sources, e.Source)) &&
		overlaps(f.Assignees, e.Assignees) && overlaps(f.Projects, e.Projects) &&
		overlaps(f.Statuses, e.Statuses) && overlaps(f.Labels, e.Labels)
}

// overlaps reports whether want is empty or shares a value with have.
func overlaps(want, have []string) bool {
	if len(want) == 0 {
		return true
	}
	for _, h := range have {
		if slices.Contains(want, h) {
			return true
		}
	}
	return false
}

// StreamRequest is what a client asks of the stream.
type StreamRequest struct {
	Filter      Filter
	Batch       time.Duration // 0: every event on its own
	LastEventID int64
	Replay      bool // LastEventID was given
}

// MaxBatch is the longest batching window a client may ask for.
const MaxBatch = 10 * time.Second

// RequestError is a stream request the server refuses: Field is the query parameter.
type RequestError struct {
	Field   string
	Message string
}

func (e *RequestError) Error() string { return e.Message }

func badParam(field, format string, args ...any) error {
	return &RequestError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// ParseStreamRequest reads rawQuery, the query string of a stream request (see
// Params.Parse), and lastEventID, the Last-Event-ID header, which wins over the
// last_event_id parameter. Parameters named in extra (those another layer reads,
// such as a token) are let through.
func ParseStreamRequest(rawQuery, lastEventID string, v Vocabulary, extra ...string) (StreamRequest, error) {
	var r StreamRequest
	f, q, err := ParseFilterQuery(rawQuery, v, append([]string{"batch", "last_event_id"}, extra...)...)
	if err != nil {
		return r, err
	}
	r.Filter = f
	if q.Has("batch") {
		d, err := time.ParseDuration(q.Get("batch"))
		if err != nil || d < 0 || d > MaxBatch {
			return r, badParam("batch", "batch must be a duration from 0 to %s, such as 250ms, got %q", MaxBatch, q.Get("batch"))
		}
		r.Batch = d
	}
	field, id := "Last-Event-ID", lastEventID
	if id == "" && q.Has("last_event_id") {
		field, id = "last_event_id", q.Get("last_event_id")
	}
	if id != "" {
		n, err := strconv.ParseInt(strings.TrimSpace(id), 10, 64)
		if err != nil || n < 0 {
			return r, badParam(field, "%s must be the id of an event, got %q", field, id)
		}
		r.LastEventID, r.Replay = n, true
	}
	return r, nil
}

// ParseFilterQuery reads the stream's filters from rawQuery, a query string checked
// by Params.Parse: the filters are its lists, and singles the single-valued parameters
// the caller reads from the values returned. An unknown type, status or source, or a
// task_id that is not one, is a RequestError naming the parameter.
func ParseFilterQuery(rawQuery string, v Vocabulary, singles ...string) (Filter, url.Values, error) {
	var f Filter
	q, err := Params{
		Lists:   []string{"types", "task_id", "assignee", "project", "status", "label", "source"},
		Singles: singles,
	}.Parse(rawQuery)
	if err != nil {
		return f, nil, err
	}
	if f.Types, err = enumList(q, "types", v.Types); err != nil {
		return f, nil, err
	}
	if f.Statuses, err = enumList(q, "status", v.Statuses); err != nil {
		return f, nil, err
	}
	if f.Sources, err = enumList(q, "source", v.Sources); err != nil {
		return f, nil, err
	}
	f.Assignees = q["assignee"]
	f.Projects = q["project"]
	f.Labels = q["label"]
	for _, s := range q["task_id"] {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id < 1 {
			return f, nil, badParam("task_id", "task_id must be a comma list of task ids, got %q", s)
		}
		f.TaskIDs = append(f.TaskIDs, id)
	}
	return f, q, nil
}

func enumList(q url.Values, name string, known []string) ([]string, error) {
	values := q[name]
	for _, s := range values {
		if !slices.Contains(known, s) {
			return nil, badParam(name, "%s must be a comma list of %s, got %q", name, strings.Join(known, ", "), s)
		}
	}
	return values, nil
}

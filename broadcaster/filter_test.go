package broadcaster

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

var vocabulary = Vocabulary{
	Types:    []string{"task_created", "task_updated", "task_deleted", "file_changed"},
	Statuses: []string{"todo", "in_progress", "review", "blocked", "done", "cancelled"},
	Sources:  []string{"rest_api", "mcp_tool", "file_watch", "system"},
}

// FuzzParseStreamRequest feeds arbitrary queries and Last-Event-ID values to the stream's
// parser: it must never panic, must refuse with the parameter named, and what it
// accepts must hold only known values.
func FuzzParseStreamRequest(f *testing.F) {
	for _, seed := range [][2]string{
		{"types=task_created,task_updated&status=todo&project=p&batch=250ms", ""},
		{"task_id=1,2,3&label=a,b&assignee=alice&source=rest_api", "42"},
		{"types=nope", ""}, {"batch=11s", ""}, {"task_id=0", ""}, {"last_event_id=-1", ""},
		{"status=todo&status=done", ""}, {"%zz", ""}, {"types=task_created;x", ""}, {"", "x"}, {"last_event_id=5", "9223372036854775807"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, query, lastEventID string) {
		r, err := ParseStreamRequest(query, lastEventID, vocabulary)
		if err != nil {
			var re *RequestError
			if !errors.As(err, &re) || re.Field == "" || re.Message == "" {
				t.Fatalf("query %q: error %#v, want a RequestError naming the parameter", query, err)
			}
			return
		}
		for _, l := range [][2][]string{{r.Filter.Types, vocabulary.Types}, {r.Filter.Statuses, vocabulary.Statuses}, {r.Filter.Sources, vocabulary.Sources}} {
			for _, v := range l[0] {
				if !slices.Contains(l[1], v) {
					t.Fatalf("query %q: accepted unknown value %q", query, v)
				}
			}
		}
		if r.Batch < 0 || r.Batch > MaxBatch || r.LastEventID < 0 || (r.LastEventID > 0 && !r.Replay) {
			t.Fatalf("query %q, Last-Event-ID %q: accepted %+v", query, lastEventID, r)
		}
	})
}

func TestFilterMatch(t *testing.T) {
	moved := &Event{Type: "task_updated", TaskID: 7, Source: "mcp_tool", Assignees: []string{"bob", "alice"},
		Projects: []string{"site"}, Statuses: []string{"done", "in_progress"}, Labels: []string{"docs"}}
	for _, tc := range []struct {
		f    Filter
		want bool
	}{
		{Filter{}, true},
		{Filter{Types: []string{"task_created", "task_updated"}}, true},
		{Filter{Types: []string{"task_deleted"}}, false},
		{Filter{TaskIDs: []int64{1, 7}}, true},
		{Filter{TaskIDs: []int64{8}}, false},
		{Filter{Assignees: []string{"alice"}}, true}, // the value before the change
		{Filter{Assignees: []string{"carol"}}, false},
		{Filter{Statuses: []string{"in_progress"}, Projects: []string{"site"}}, true},
		{Filter{Statuses: []string{"in_progress"}, Projects: []string{"other"}}, false}, // AND across lists
		{Filter{Labels: []string{"x", "docs"}}, true},
		{Filter{Sources: []string{"rest_api"}}, false},
	} {
		if got := tc.f.Match(moved); got != tc.want {
			t.Errorf("%+v: Match = %v, want %v", tc.f, got, tc.want)
		}
	}
	if r, err := ParseStreamRequest("batch=250ms", "", vocabulary); err != nil || r.Batch != 250*time.Millisecond || r.Replay {
		t.Errorf("batch=250ms: %+v, %v", r, err)
	}
}

// TestParseStreamRequestRefuses checks that a query the stream cannot honour is refused
// with the parameter, or the query as a whole, named: a query string that does not
// parse would otherwise lose every filter, and the stream would carry everything.
func TestParseStreamRequestRefuses(t *testing.T) {
	for _, tc := range []struct{ name, query, field string }{
		{"semicolon", "types=bogus;x", "query"},
		{"bad escape", "status=%zz", "query"},
		{"bad escape in a name", "%zz=1", "query"},
		{"over 10,000 parameters", strings.Repeat("types=task_created&", 10_001), "query"},
		{"no name", "=todo", "query"},
		{"unknown parameter", "colour=red", "colour"},
		{"unknown type", "types=task_moved", "types"},
		{"batch twice", "batch=1s&batch=2s", "batch"},
		{"last_event_id twice", "last_event_id=1&last_event_id=2", "last_event_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseStreamRequest(tc.query, "", vocabulary)
			re, ok := errors.AsType[*RequestError](err)
			if !ok || re.Field != tc.field || re.Message == "" {
				t.Fatalf("ParseStreamRequest(%.40q) = %+v, %v; want a RequestError for %s", tc.query, r, err, tc.field)
			}
		})
	}
}

// TestWriteError checks the error shape every TaskHub endpoint answers with, byte for
// byte: field is left out when there is none.
func TestWriteError(t *testing.T) {
	for _, tc := range []struct{ field, want string }{
		{"types", `{"error":{"code":"invalid_argument","message":"types must be \u003cknown\u003e","field":"types"}}` + "\n"},
		{"", `{"error":{"code":"invalid_argument","message":"types must be \u003cknown\u003e"}}` + "\n"},
	} {
		w := httptest.NewRecorder()
		WriteError(w, http.StatusBadRequest, "invalid_argument", "types must be <known>", tc.field)
		if w.Code != http.StatusBadRequest || w.Header().Get("Content-Type") != "application/json" || w.Body.String() != tc.want {
			t.Errorf("field %q: %d %q %q; want 400 application/json %q", tc.field, w.Code, w.Header().Get("Content-Type"), w.Body.String(), tc.want)
		}
	}
}

// TestParseStreamRequestRepeats checks that a list parameter given more than once is
// its comma list, as in the REST API.
func TestParseStreamRequestRepeats(t *testing.T) {
	r, err := ParseStreamRequest("status=todo&status=done,review&types=task_created&types=task_updated&task_id=1&task_id=2", "", vocabulary)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.Filter.Statuses, []string{"todo", "done", "review"}; !slices.Equal(got, want) {
		t.Errorf("statuses %v, want %v", got, want)
	}
	if got, want := r.Filter.Types, []string{"task_created", "task_updated"}; !slices.Equal(got, want) {
		t.Errorf("types %v, want %v", got, want)
	}
	if got, want := r.Filter.TaskIDs, []int64{1, 2}; !slices.Equal(got, want) {
		t.Errorf("task ids %v, want %v", got, want)
	}
}

func TestParamsParse(t *testing.T) {
	p := Params{Lists: []string{"status"}, Singles: []string{"limit"}}
	for _, tc := range []struct {
		raw    string
		status []string
		limit  string
		field  string // the error's, "" for none
	}{
		{raw: ""},
		{raw: "status=todo,%20done&limit=5", status: []string{"todo", "done"}, limit: "5"},
		{raw: "status=todo&status=&status=,done", status: []string{"todo", "done"}},
		{raw: "limit=", limit: ""},
		{raw: "limit=1&limit=2", field: "limit"},
		{raw: "colour=red", field: "colour"},
		{raw: "Status=todo", field: "Status"},
		{raw: "=x", field: "query"},
		{raw: "status=todo;limit=1", field: "query"},
		{raw: "limit=%zz", field: "query"},
	} {
		q, err := p.Parse(tc.raw)
		if tc.field != "" {
			if re, ok := errors.AsType[*RequestError](err); !ok || re.Field != tc.field || re.Message == "" {
				t.Errorf("%q: %v, %v; want a RequestError for %s", tc.raw, q, err, tc.field)
			}
			continue
		}
		if err != nil || !slices.Equal(q["status"], tc.status) || q.Get("limit") != tc.limit {
			t.Errorf("%q: %v, %v; want status %v, limit %q", tc.raw, q, err, tc.status, tc.limit)
		}
	}
	if _, err := (Params{}).Parse("x=1"); err == nil || !strings.Contains(err.Error(), "takes none") {
		t.Errorf("a parameter where none is taken: %v", err)
	}
}

// TestOrigins checks that origins compare as browsers send them, and that a request's
// own origin is allowed whether listed or not.
func TestOrigins(t *testing.T) {
	o := NewOrigins([]string{"https://Board.example:8443/", "http://localhost:3000"})
	r := httptest.NewRequest(http.MethodGet, "http://Hub.example:8080/mcp", nil)
	for _, tc := range []struct {
		origin string
		want   bool
	}{
		{"https://board.example:8443", true},
		{"HTTPS://BOARD.EXAMPLE:8443", true},
		{"http://localhost:3000/", true},
		{"http://board.example:8443", false},
		{"https://board.example", false},
		{"http://localhost:3001", false},
		{"http://hub.example:8080", true}, // the request's own
		{"https://hub.example:8080", false},
		{"null", false},
	} {
		if got := o.Allows(tc.origin, r); got != tc.want {
			t.Errorf("Allows(%q) = %v, want %v", tc.origin, got, tc.want)
		}
	}
	if o.Contains("http://hub.example:8080") {
		t.Error("Contains the request's own origin, which is not in the list")
	}
}

func TestVocabularyCheck(t *testing.T) {
	v := Vocabulary{Types: []string{"a", "b"}, Statuses: []string{"todo"}, Sources: []string{"rest_api"}}
	for _, tc := range []struct {
		f     Filter
		field string
	}{
		{Filter{}, ""},
		{Filter{Types: []string{"b"}, Statuses: []string{"todo"}, Sources: []string{"rest_api"}, TaskIDs: []int64{1}, Projects: []string{"any"}}, ""},
		{Filter{Types: []string{"a", "c"}}, "types"},
		{Filter{Statuses: []string{"doing"}}, "status"},
		{Filter{Sources: []string{"web"}}, "source"},
		{Filter{TaskIDs: []int64{3, 0}}, "task_id"},
	} {
		err := v.Check(tc.f)
		var re *RequestError
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%+v: %v, want no error", tc.f, err)
		case tc.field != "" && (!errors.As(err, &re) || re.Field != tc.field):
			t.Errorf("%+v: %v, want an error naming %s", tc.f, err, tc.field)
		}
	}
}

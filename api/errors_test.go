package api_test

import (
	"encoding/base64"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// errCase is a request the server must refuse with the contract's error shape. In path
// and string bodies, {target}, {dependent}, {parent}, {child} and {gone} stand for the
// ids of the fixture's tasks.
type errCase struct {
	name   string
	method string
	path   string
	body   any
	h      hdr
	status int
	code   string
	field  string
	msg    string   // a part of the message, if it matters
	allow  []string // methods the Allow header must list
}

// fixture is a server with tasks for bad requests to aim at:
//
//	target     at version 2, labels and project set
//	dependent  depends on target
//	parent     has child as its subtask
//	child      subtask of parent
//	gone       deleted
type fixture struct {
	*server
	target, dependent, parent, child, gone apiTask
	ids                                    map[string]int64
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	s := newServer(t)
	f := &fixture{server: s}
	f.target = s.create(t, `{"title": "target", "labels": ["a"], "project": "p", "description": "d"}`)
	f.target = s.patch(t, f.target.ID, `{"status": "in_progress"}`)
	f.dependent = s.create(t, fmt.Sprintf(`{"title": "dependent", "depends_on": [%d]}`, f.target.ID))
	f.parent = s.createTitled(t, "parent")
	f.child = s.create(t, fmt.Sprintf(`{"title": "child", "parent_id": %d}`, f.parent.ID))
	f.gone = s.createTitled(t, "gone")
	status, _, b := s.do(t, "DELETE", taskPath(f.gone.ID), nil, nil)
	wantStatus(t, "DELETE", taskPath(f.gone.ID), status, http.StatusNoContent, b)
	f.ids = map[string]int64{
		"target": f.target.ID, "dependent": f.dependent.ID, "parent": f.parent.ID,
		"child": f.child.ID, "gone": f.gone.ID,
	}
	return f
}

// expand replaces the {name} placeholders of s with ids.
func (f *fixture) expand(s string) string {
	var pairs []string
	for name, id := range f.ids {
		pairs = append(pairs, "{"+name+"}", fmt.Sprint(id))
	}
	return strings.NewReplacer(pairs...).Replace(s)
}

// badBodies are task bodies that both POST and PATCH refuse with 400 invalid_argument
// and the field.
var badBodies = []struct{ name, body, field string }{
	{"empty title", `{"title": ""}`, "title"},
	{"blank title", `{"title": " \t\n "}`, "title"},
	{"title over 200 characters", `{"title": "` + strings.Repeat("x", 201) + `"}`, "title"},
	{"null title", `{"title": null}`, "title"},
	{"title a number", `{"title": 5}`, "title"},
	{"title an array", `{"title": ["x"]}`, "title"},
	{"21 labels", `{"title": "x", "labels": [` + labels(21) + `]}`, "labels"},
	{"empty label", `{"title": "x", "labels": ["ok", " "]}`, "labels"},
	{"label over 50 characters", `{"title": "x", "labels": ["` + strings.Repeat("l", 51) + `"]}`, "labels"},
	{"labels a string", `{"title": "x", "labels": "x"}`, "labels"},
	{"labels of numbers", `{"title": "x", "labels": [1]}`, "labels"},
	{"unknown status", `{"title": "x", "status": "finished"}`, "status"},
	{"status in capitals", `{"title": "x", "status": "TODO"}`, "status"},
	{"null status", `{"title": "x", "status": null}`, "status"},
	{"unknown priority", `{"title": "x", "priority": "critical"}`, "priority"},
	{"null priority", `{"title": "x", "priority": null}`, "priority"},
	{"description over 64 KiB", `{"title": "x", "description": "` + strings.Repeat("d", 64<<10+1) + `"}`, "description"},
	{"description a number", `{"title": "x", "description": 5}`, "description"},
	{"assignee over 100 characters", `{"title": "x", "assignee": "` + strings.Repeat("a", 101) + `"}`, "assignee"},
	{"assignee a boolean", `{"title": "x", "assignee": true}`, "assignee"},
	{"project over 100 characters", `{"title": "x", "project": "` + strings.Repeat("p", 101) + `"}`, "project"},
	{"unknown field", `{"title": "x", "colour": "red"}`, "colour"},
	{"field in other case", `{"Title": "x"}`, "Title"},
	{"read-only id", `{"title": "x", "id": 5}`, "id"},
	{"read-only version", `{"title": "x", "version": 9}`, "version"},
	{"read-only created_at", `{"title": "x", "created_at": "2026-01-01T00:00:00Z"}`, "created_at"},
	{"read-only updated_by", `{"title": "x", "updated_by": "mallory"}`, "updated_by"},
	{"field given twice", `{"title": "a", "title": "b"}`, "title"},
	{"field given twice, once escaped", `{"title": "a", "ti\u0074le": "b"}`, "title"},
	{"parent_id a fraction", `{"title": "x", "parent_id": 1.5}`, "parent_id"},
	{"parent_id a string", `{"title": "x", "parent_id": "{parent}"}`, "parent_id"},
	{"parent_id missing", `{"title": "x", "parent_id": 999999}`, "parent_id"},
	{"parent_id deleted", `{"title": "x", "parent_id": {gone}}`, "parent_id"},
	{"depends_on a string", `{"title": "x", "depends_on": "{target}"}`, "depends_on"},
	{"depends_on of fractions", `{"title": "x", "depends_on": [1.5]}`, "depends_on"},
	{"depends_on missing", `{"title": "x", "depends_on": [{target}, 999999]}`, "depends_on"},
	{"depends_on deleted", `{"title": "x", "depends_on": [{gone}]}`, "depends_on"},
	{"due_at not a time", `{"title": "x", "due_at": "tomorrow"}`, "due_at"},
	{"due_at a number", `{"title": "x", "due_at": 5}`, "due_at"},
	{"due_at offset +24:00", `{"title": "x", "due_at": "2026-01-01T00:00:00+24:00"}`, "due_at"},
	{"due_at offset -24:00", `{"title": "x", "due_at": "2026-01-01T00:00:00-24:00"}`, "due_at"},
	{"due_at offset minute 60", `{"title": "x", "due_at": "2026-01-01T00:00:00+01:60"}`, "due_at"},
	{"malformed JSON", `{"title":`, ""},
	{"trailing comma", `{"title": "x",}`, ""},
	{"unquoted key", `{title: "x"}`, ""},
	{"single quotes", `{'title': 'x'}`, ""},
	{"empty body", ``, ""},
	{"blank body", " \n\t ", ""},
	{"data after the object", `{"title": "x"} {}`, ""},
	{"garbage after the object", `{"title": "x"}x`, ""},
	{"bracket after the object", `{"title": "x"}]`, ""},
	{"array", `[{"title": "x"}]`, ""},
	{"empty array", `[]`, ""},
	{"string", `"x"`, ""},
	{"number", `1`, ""},
	{"null", `null`, ""},
}

func labels(n int) string {
	l := make([]string, n)
	for i := range l {
		l[i] = fmt.Sprintf(`"l%d"`, i)
	}
	return strings.Join(l, ", ")
}

// tooLarge is a task body one byte over the 1 MiB limit.
var tooLarge = `{"title": "` + strings.Repeat("x", 1<<20-len(`{"title": ""}`)+1) + `"}`

func errorCases() []errCase {
	const target = "/api/tasks/{target}"
	var cases []errCase
	for _, b := range badBodies {
		cases = append(cases,
			errCase{name: "POST " + b.name, method: "POST", path: "/api/tasks", body: b.body, h: jsonCT,
				status: 400, code: "invalid_argument", field: b.field},
			errCase{name: "PATCH " + b.name, method: "PATCH", path: target, body: b.body, h: patchCT(""),
				status: 400, code: "invalid_argument", field: b.field})
	}
	return append(cases, []errCase{
		// 400: rules of a new task.
		{name: "POST without title", method: "POST", path: "/api/tasks", body: `{}`, h: jsonCT, status: 400, code: "invalid_argument", field: "title"},
		{name: "POST description only", method: "POST", path: "/api/tasks", body: `{"description": "x"}`, h: jsonCT, status: 400, code: "invalid_argument", field: "title"},

		// 400: rules that look at other tasks.
		{name: "PATCH depends_on itself", method: "PATCH", path: target, body: `{"depends_on": [{target}]}`, h: patchCT(""), status: 400, code: "invalid_argument", field: "depends_on"},
		{name: "PATCH depends_on cycle", method: "PATCH", path: target, body: `{"depends_on": [{dependent}]}`, h: patchCT(""), status: 400, code: "invalid_argument", field: "depends_on", msg: "cycle"},
		{name: "PATCH parent_id itself", method: "PATCH", path: target, body: `{"parent_id": {target}}`, h: patchCT(""), status: 400, code: "invalid_argument", field: "parent_id"},
		{name: "PATCH parent_id cycle", method: "PATCH", path: "/api/tasks/{parent}", body: `{"parent_id": {child}}`, h: patchCT(""), status: 400, code: "invalid_argument", field: "parent_id"},
		{name: "PATCH parent_id missing", method: "PATCH", path: target, body: `{"parent_id": 999999}`, h: patchCT(""), status: 400, code: "invalid_argument", field: "parent_id"},

		// 400: headers, paths and query parameters.
		{name: "PATCH If-Match unquoted", method: "PATCH", path: target, body: `{"title": "y"}`, h: patchCT("v2"), status: 400, code: "invalid_argument", field: "If-Match"},
		{name: "PATCH If-Match weak", method: "PATCH", path: target, body: `{"title": "y"}`, h: patchCT(`W/"v2"`), status: 400, code: "invalid_argument", field: "If-Match"},
		{name: "PATCH If-Match foreign", method: "PATCH", path: target, body: `{"title": "y"}`, h: patchCT(`"abc"`), status: 400, code: "invalid_argument", field: "If-Match"},
		{name: "PATCH If-Match v0", method: "PATCH", path: target, body: `{"title": "y"}`, h: patchCT(`"v0"`), status: 400, code: "invalid_argument", field: "If-Match"},
		{name: "PATCH If-Match negative", method: "PATCH", path: target, body: `{"title": "y"}`, h: patchCT(`"v-2"`), status: 400, code: "invalid_argument", field: "If-Match"},
		{name: "DELETE If-Match unquoted", method: "DELETE", path: "/api/tasks/{child}", h: hdr{"If-Match": "v1"}, status: 400, code: "invalid_argument", field: "If-Match"},
		{name: "GET id not a number", method: "GET", path: "/api/tasks/abc", status: 400, code: "invalid_argument", field: "id"},
		{name: "GET id zero", method: "GET", path: "/api/tasks/0", status: 400, code: "invalid_argument", field: "id"},
		{name: "GET id negative", method: "GET", path: "/api/tasks/-1", status: 400, code: "invalid_argument", field: "id"},
		{name: "GET id a fraction", method: "GET", path: "/api/tasks/1.5", status: 400, code: "invalid_argument", field: "id"},
		{name: "GET id with a plus sign", method: "GET", path: "/api/tasks/+{target}", status: 400, code: "invalid_argument", field: "id"},
		{name: "GET id with a leading zero", method: "GET", path: "/api/tasks/0{target}", status: 400, code: "invalid_argument", field: "id"},
		{name: "PATCH id with a leading zero", method: "PATCH", path: "/api/tasks/0{target}", body: `{"title": "y"}`, h: patchCT(""), status: 400, code: "invalid_argument", field: "id"},
		{name: "DELETE id with a plus sign", method: "DELETE", path: "/api/tasks/+{child}", status: 400, code: "invalid_argument", field: "id"},
		{name: "GET events id with a leading zero", method: "GET", path: "/api/tasks/00{target}/events", status: 400, code: "invalid_argument", field: "id"},
		{name: "GET id overflows", method: "GET", path: "/api/tasks/99999999999999999999", status: 400, code: "invalid_argument", field: "id"},
		{name: "PATCH id not a number", method: "PATCH", path: "/api/tasks/abc", body: `{"title": "y"}`, h: patchCT(""), status: 400, code: "invalid_argument", field: "id"},
		{name: "DELETE id not a number", method: "DELETE", path: "/api/tasks/abc", status: 400, code: "invalid_argument", field: "id"},
		{name: "GET events id not a number", method: "GET", path: "/api/tasks/abc/events", status: 400, code: "invalid_argument", field: "id"},
		{name: "list unknown parameter", method: "GET", path: "/api/tasks?colour=red", status: 400, code: "invalid_argument", field: "colour"},
		{name: "list misspelt filter", method: "GET", path: "/api/tasks?Status=todo", status: 400, code: "invalid_argument", field: "Status"},
		{name: "list unknown status", method: "GET", path: "/api/tasks?status=todo,finished", status: 400, code: "invalid_argument", field: "status"},
		{name: "list parent_id not a number", method: "GET", path: "/api/tasks?parent_id=x", status: 400, code: "invalid_argument", field: "parent_id"},
		{name: "list limit not a number", method: "GET", path: "/api/tasks?limit=ten", status: 400, code: "invalid_argument", field: "limit"},
		{name: "list limit empty", method: "GET", path: "/api/tasks?limit=", status: 400, code: "invalid_argument", field: "limit"},
		{name: "list limit fraction", method: "GET", path: "/api/tasks?limit=2.5", status: 400, code: "invalid_argument", field: "limit"},
		{name: "list limit 0", method: "GET", path: "/api/tasks?limit=0", status: 400, code: "invalid_argument", field: "limit"},
		{name: "list limit -1", method: "GET", path: "/api/tasks?limit=-1", status: 400, code: "invalid_argument", field: "limit"},
		{name: "list limit 501", method: "GET", path: "/api/tasks?limit=501", status: 400, code: "invalid_argument", field: "limit"},
		{name: "list cursor garbage", method: "GET", path: "/api/tasks?cursor=!!!", status: 400, code: "invalid_argument", field: "cursor"},
		{name: "list cursor not ours", method: "GET", path: "/api/tasks?cursor=" + base64.RawURLEncoding.EncodeToString([]byte("42")), status: 400, code: "invalid_argument", field: "cursor"},
		{name: "list cursor negative", method: "GET", path: "/api/tasks?cursor=" + base64.RawURLEncoding.EncodeToString([]byte("c1:-5")), status: 400, code: "invalid_argument", field: "cursor"},
		{name: "list q over 200 bytes", method: "GET", path: "/api/tasks?q=" + strings.Repeat("q", 201), status: 400, code: "invalid_argument", field: "q"},
		{name: "events unknown parameter", method: "GET", path: "/api/events?since=1", status: 400, code: "invalid_argument", field: "since"},
		{name: "events after not a number", method: "GET", path: "/api/events?after=x", status: 400, code: "invalid_argument", field: "after"},
		{name: "events after negative", method: "GET", path: "/api/events?after=-1", status: 400, code: "invalid_argument", field: "after"},
		{name: "events limit not a number", method: "GET", path: "/api/events?limit=x", status: 400, code: "invalid_argument", field: "limit"},
		{name: "events limit 0", method: "GET", path: "/api/events?limit=0", status: 400, code: "invalid_argument", field: "limit"},
		{name: "events limit 1001", method: "GET", path: "/api/events?limit=1001", status: 400, code: "invalid_argument", field: "limit"},
		{name: "list limit twice", method: "GET", path: "/api/tasks?limit=1&limit=2", status: 400, code: "invalid_argument", field: "limit"},
		{name: "events after twice", method: "GET", path: "/api/events?after=1&after=2", status: 400, code: "invalid_argument", field: "after"},
		{name: "task with a parameter", method: "GET", path: "/api/tasks/{target}?fields=title", status: 400, code: "invalid_argument", field: "fields"},
		{name: "task history with a parameter", method: "GET", path: "/api/tasks/{target}/events?after=5", status: 400, code: "invalid_argument", field: "after"},
		{name: "list query with a semicolon", method: "GET", path: "/api/tasks?status=bogus;x", status: 400, code: "invalid_argument", field: "query", msg: "semicolon"},
		{name: "list limit not URL encoding", method: "GET", path: "/api/tasks?limit=%zz", status: 400, code: "invalid_argument", field: "query", msg: "%zz"},
		{name: "list over 10,000 parameters", method: "GET", path: "/api/tasks?" + strings.Repeat("status=todo&", 10_001), status: 400, code: "invalid_argument", field: "query"},
		{name: "events query with a semicolon", method: "GET", path: "/api/events?after=0;x", status: 400, code: "invalid_argument", field: "query"},
		{name: "DELETE query that does not parse", method: "DELETE", path: "/api/tasks/{child}?force%zz", status: 400, code: "invalid_argument", field: "query"},
		{name: "POST with a parameter", method: "POST", path: "/api/tasks?dry_run=1", body: `{"title": "y"}`, h: jsonCT, status: 400, code: "invalid_argument", field: "dry_run"},
		{name: "PATCH with a parameter", method: "PATCH", path: target + "?force=true", body: `{"title": "y"}`, h: patchCT(""), status: 400, code: "invalid_argument", field: "force"},
		{name: "DELETE with a parameter", method: "DELETE", path: "/api/tasks/{child}?force=true", status: 400, code: "invalid_argument", field: "force"},

		// 404
		{name: "GET missing task", method: "GET", path: "/api/tasks/999999", status: 404, code: "not_found"},
		{name: "GET deleted task", method: "GET", path: "/api/tasks/{gone}", status: 404, code: "not_found"},
		{name: "PATCH missing task", method: "PATCH", path: "/api/tasks/999999", body: `{"title": "y"}`, h: patchCT(""), status: 404, code: "not_found"},
		{name: "PATCH deleted task", method: "PATCH", path: "/api/tasks/{gone}", body: `{"title": "y"}`, h: patchCT(`"v1"`), status: 404, code: "not_found"},
		{name: "DELETE missing task", method: "DELETE", path: "/api/tasks/999999", status: 404, code: "not_found"},
		{name: "DELETE deleted task", method: "DELETE", path: "/api/tasks/{gone}", status: 404, code: "not_found"},
		{name: "events of a task that never existed", method: "GET", path: "/api/tasks/999999/events", status: 404, code: "not_found"},
		{name: "unknown API path", method: "GET", path: "/api/nope", status: 404, code: "not_found", msg: "/api/nope"},
		{name: "unknown POST path", method: "POST", path: "/api/nope", body: `{}`, h: jsonCT, status: 404, code: "not_found"},
		{name: "unknown path under a task", method: "GET", path: "/api/tasks/{target}/comments", status: 404, code: "not_found"},
		{name: "unknown root path", method: "GET", path: "/nope", status: 404, code: "not_found"},

		// 405
		{name: "PUT task", method: "PUT", path: target, body: `{"title": "y"}`, h: jsonCT, status: 405, code: "method_not_allowed", allow: []string{"GET", "PATCH", "DELETE"}},
		{name: "POST task", method: "POST", path: target, body: `{"title": "y"}`, h: jsonCT, status: 405, code: "method_not_allowed", allow: []string{"GET", "PATCH", "DELETE"}},
		{name: "DELETE task list", method: "DELETE", path: "/api/tasks", status: 405, code: "method_not_allowed", allow: []string{"GET", "POST"}},
		{name: "PATCH task list", method: "PATCH", path: "/api/tasks", body: `{"title": "y"}`, h: patchCT(""), status: 405, code: "method_not_allowed", allow: []string{"GET", "POST"}},
		{name: "POST task events", method: "POST", path: target + "/events", body: `{}`, h: jsonCT, status: 405, code: "method_not_allowed", allow: []string{"GET"}},
		{name: "DELETE event log", method: "DELETE", path: "/api/events", status: 405, code: "method_not_allowed", allow: []string{"GET"}},
		{name: "POST healthz", method: "POST", path: "/healthz", status: 405, code: "method_not_allowed", allow: []string{"GET"}},

		// 409
		{name: "DELETE task others depend on", method: "DELETE", path: target, status: 409, code: "conflict", msg: "depend"},
		{name: "DELETE task others depend on, If-Match current", method: "DELETE", path: target, h: hdr{"If-Match": `"v2"`}, status: 409, code: "conflict"},
		{name: "DELETE task with a subtask", method: "DELETE", path: "/api/tasks/{parent}", status: 409, code: "conflict", msg: "parent"},

		// 412
		{name: "PATCH stale If-Match", method: "PATCH", path: target, body: `{"title": "y"}`, h: patchCT(`"v1"`), status: 412, code: "precondition_failed"},
		{name: "PATCH future If-Match", method: "PATCH", path: target, body: `{"title": "y"}`, h: patchCT(`"v3"`), status: 412, code: "precondition_failed"},
		{name: "PATCH stale If-Match, no change", method: "PATCH", path: target, body: `{}`, h: patchCT(`"v1"`), status: 412, code: "precondition_failed"},
		{name: "DELETE stale If-Match", method: "DELETE", path: "/api/tasks/{child}", h: hdr{"If-Match": `"v2"`}, status: 412, code: "precondition_failed"},

		// 413
		{name: "POST over 1 MiB with Content-Length", method: "POST", path: "/api/tasks", body: tooLarge, h: jsonCT, status: 413, code: "payload_too_large", msg: "1 MiB"},
		{name: "POST over 1 MiB chunked", method: "POST", path: "/api/tasks", body: chunked(tooLarge), h: jsonCT, status: 413, code: "payload_too_large", msg: "1 MiB"},
		{name: "PATCH over 1 MiB with Content-Length", method: "PATCH", path: target, body: tooLarge, h: patchCT(""), status: 413, code: "payload_too_large"},
		{name: "PATCH over 1 MiB chunked", method: "PATCH", path: target, body: chunked(tooLarge), h: patchCT(""), status: 413, code: "payload_too_large"},
		{name: "POST 2 MiB of whitespace after the object, chunked", method: "POST", path: "/api/tasks",
			body: chunked(`{"title": "x"}` + strings.Repeat(" ", 2<<20)), h: jsonCT, status: 413, code: "payload_too_large"},

		// 415
		{name: "POST without Content-Type", method: "POST", path: "/api/tasks", body: `{"title": "y"}`, status: 415, code: "unsupported_media_type"},
		{name: "POST text/plain", method: "POST", path: "/api/tasks", body: `{"title": "y"}`, h: hdr{"Content-Type": "text/plain"}, status: 415, code: "unsupported_media_type"},
		{name: "POST form", method: "POST", path: "/api/tasks", body: `title=y`, h: hdr{"Content-Type": "application/x-www-form-urlencoded"}, status: 415, code: "unsupported_media_type"},
		{name: "POST malformed Content-Type", method: "POST", path: "/api/tasks", body: `{"title": "y"}`, h: hdr{"Content-Type": "application/json;;;"}, status: 415, code: "unsupported_media_type"},
		{name: "POST merge patch", method: "POST", path: "/api/tasks", body: `{"title": "y"}`, h: hdr{"Content-Type": "application/merge-patch+json"}, status: 415, code: "unsupported_media_type"},
		{name: "PATCH without Content-Type", method: "PATCH", path: target, body: `{"title": "y"}`, status: 415, code: "unsupported_media_type"},
		{name: "PATCH text/plain", method: "PATCH", path: target, body: `{"title": "y"}`, h: hdr{"Content-Type": "text/plain"}, status: 415, code: "unsupported_media_type"},
		{name: "PATCH JSON patch", method: "PATCH", path: target, body: `[{"op": "remove", "path": "/title"}]`, h: hdr{"Content-Type": "application/json-patch+json"}, status: 415, code: "unsupported_media_type"},
	}...)
}

// TestErrors sends every bad request to one server and checks the status, the error
// body and that the request changed nothing: every task reads the same bytes, the task
// list is the same and the event log has no new event.
func TestErrors(t *testing.T) {
	f := newFixture(t)
	all := slices.Collect(maps.Values(f.ids))
	before := f.state(t, all...) // every request must leave it as it is
	for _, tc := range errorCases() {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if t.Failed() { // so that one failure does not fail every later case
					before = f.state(t, all...)
				}
			}()
			body := tc.body
			if s, ok := body.(string); ok {
				body = f.expand(s)
			}
			path := f.expand(tc.path)
			status, h, b := f.do(t, tc.method, path, body, tc.h)
			wantError(t, status, h, b, tc.status, tc.code, tc.field)
			if tc.msg != "" {
				if msg := errorMessage(t, b); !strings.Contains(msg, tc.msg) {
					t.Errorf("message %q does not mention %q", msg, tc.msg)
				}
			}
			if tc.allow != nil {
				allow := strings.Split(h.Get("Allow"), ",")
				for i := range allow {
					allow[i] = strings.TrimSpace(allow[i])
				}
				for _, m := range tc.allow {
					if !slices.Contains(allow, m) {
						t.Errorf("Allow = %q, want it to list %s", h.Get("Allow"), m)
					}
				}
				if slices.Contains(allow, tc.method) {
					t.Errorf("Allow = %q lists %s, which was refused", h.Get("Allow"), tc.method)
				}
			}
			f.wantUnchanged(t, before)
		})
	}
}

// TestBodyLimit checks the 1 MiB limit at its edge: a body of exactly 1 MiB is read
// (JSON allows the whitespace that pads it), one byte more is refused, with or without
// Content-Length.
func TestBodyLimit(t *testing.T) {
	s := newServer(t)
	obj := `{"title": "x"}`
	exact := obj + strings.Repeat(" ", 1<<20-len(obj))
	over := exact + " "
	for _, tc := range []struct {
		name   string
		body   any
		status int
	}{
		{"1 MiB with Content-Length", exact, http.StatusCreated},
		{"1 MiB chunked", chunked(exact), http.StatusCreated},
		{"1 MiB + 1 with Content-Length", over, http.StatusRequestEntityTooLarge},
		{"1 MiB + 1 chunked", chunked(over), http.StatusRequestEntityTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, h, b := s.do(t, "POST", "/api/tasks", tc.body, jsonCT)
			if tc.status == http.StatusCreated {
				wantStatus(t, "POST", "/api/tasks", status, tc.status, b)
				return
			}
			wantError(t, status, h, b, tc.status, "payload_too_large", "")
		})
	}
}

// TestErrorMessages checks that a message names the actual problem, since it is what a
// client shows its user.
func TestErrorMessages(t *testing.T) {
	s := newServer(t)
	a := s.createTitled(t, "a")
	b := s.create(t, fmt.Sprintf(`{"title": "b", "depends_on": [%d]}`, a.ID))
	c := s.create(t, fmt.Sprintf(`{"title": "c", "depends_on": [%d]}`, b.ID))
	for _, tc := range []struct {
		name   string
		method string
		path   string
		body   string
		field  string
		want   string // the message contains this
		reject string // and not this
	}{
		{name: "empty body", method: "POST", path: "/api/tasks", body: "", want: "empty"},
		{name: "cycle shows its path", method: "PATCH", path: taskPath(a.ID), body: fmt.Sprintf(`{"depends_on": [%d]}`, c.ID),
			field: "depends_on", want: fmt.Sprintf("%d → %d → %d → %d", a.ID, c.ID, b.ID, a.ID)},
		{name: "missing dependency named", method: "POST", path: "/api/tasks", body: `{"title": "x", "depends_on": [999999]}`,
			field: "depends_on", want: "999999"},
		{name: "body cut short", method: "POST", path: "/api/tasks", body: `{"title": "x"`, reject: "empty"},
		{name: "lone brace", method: "POST", path: "/api/tasks", body: `{`, reject: "empty"},
		{name: "parent_id 0 on create", method: "POST", path: "/api/tasks", body: `{"title": "x", "parent_id": 0}`,
			field: "parent_id", reject: "own parent"},
		{name: "depends_on 0 on create", method: "POST", path: "/api/tasks", body: `{"title": "x", "depends_on": [0]}`,
			field: "depends_on", reject: "itself"},
		{name: "null in depends_on", method: "POST", path: "/api/tasks", body: `{"title": "x", "depends_on": [null]}`,
			field: "depends_on", want: "task ids"},
		{name: "null in labels", method: "POST", path: "/api/tasks", body: `{"title": "x", "labels": [null]}`,
			field: "labels", want: "array of strings"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := s.state(t, a.ID, b.ID, c.ID)
			var body any
			if tc.body != "" {
				body = tc.body
			}
			status, h, resp := s.do(t, tc.method, tc.path, body, jsonCT)
			wantError(t, status, h, resp, http.StatusBadRequest, "invalid_argument", tc.field)
			msg := errorMessage(t, resp)
			if tc.want != "" && !strings.Contains(msg, tc.want) {
				t.Errorf("message %q does not mention %q", msg, tc.want)
			}
			if tc.reject != "" && strings.Contains(msg, tc.reject) {
				t.Errorf("message %q says %q, which is not the problem", msg, tc.reject)
			}
			s.wantUnchanged(t, before)
		})
	}
}

// TestInvalidUTF8 checks that a body that is not UTF-8, and so not JSON (RFC 8259 §8.1),
// is refused rather than stored with its bytes replaced.
func TestInvalidUTF8(t *testing.T) {
	s := newServer(t)
	before := s.state(t)
	status, h, b := s.do(t, "POST", "/api/tasks", "{\"title\": \"ok \xff\"}", jsonCT)
	wantError(t, status, h, b, http.StatusBadRequest, "invalid_argument", "title")
	s.wantUnchanged(t, before)
}

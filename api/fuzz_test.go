package api

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"

	"taskhub/tasks"
)

// FuzzDecodeUpdate feeds arbitrary bodies to the task decoder: it must never panic,
// and must either decode or refuse with a 400 naming what is wrong.
func FuzzDecodeUpdate(f *testing.F) {
	for _, seed := range []string{
		`{"title":"x"}`,
		`{"title":"x","labels":["a","b"],"depends_on":[1,2],"parent_id":null,"due_at":"2026-11-21T05:00:00Z"}`,
		`{"title":null}`, `{"labels":[null]}`, `{"title":"x","title":"y"}`, `{"id":1}`, `{"nope":1}`,
		`{"title":"x"} {}`, `[]`, `{`, ``, `{"title":"ok \xff"}`, `{"depends_on":[1.5]}`,
		`{"due_at":"tomorrow"}`, `{"priority":5}`, `{"description":` + strings.Repeat(`"`, 3),
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		u, err := decodeUpdate(bytes.NewReader(body))
		if err != nil {
			e, ok := errors.AsType[*Error](err)
			if !ok || e.Status != http.StatusBadRequest || e.Code != tasks.EInvalid || e.Message == "" {
				t.Fatalf("body %q: error %#v, want a 400 invalid_argument with a message", body, err)
			}
			return
		}
		// What decoded is what the body said: a set title came from a string.
		if u.Title.Set && !bytes.Contains(body, []byte(`"title"`)) {
			t.Fatalf("body %q: title set from nowhere", body)
		}
	})
}

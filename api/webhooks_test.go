package api_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"taskhub/api"
	"taskhub/tasks"
	"taskhub/tasks/sqlite"
	"taskhub/webhooks"
)

// apiWebhook is an endpoint as the contract (§11) puts it on the wire.
type apiWebhook struct {
	ID                      int64            `json:"id"`
	URL                     string           `json:"url"`
	Filters                 map[string][]any `json:"filters"`
	Enabled                 bool             `json:"enabled"`
	Secret                  string           `json:"secret"`
	PreviousSecretExpiresAt *string          `json:"previous_secret_expires_at"`
	CreatedAt               string           `json:"created_at"`
	UpdatedAt               string           `json:"updated_at"`
	State                   map[string]any   `json:"state"`
}

// webhookServer is the API over a fresh database with the webhooks mounted.
type webhookServer struct {
	*server
	db *sqlite.DB
}

func newWebhookServer(t *testing.T, allowPrivate bool) *webhookServer {
	t.Helper()
	db := openDB(t)
	ts := httptest.NewServer(api.New(api.Config{
		Service: tasks.NewService(db), Logger: slog.New(slog.DiscardHandler),
		Webhooks: webhooks.NewService(webhooks.Config{Store: db, Vocabulary: api.StreamVocabulary(), AllowPrivate: allowPrivate}),
	}))
	t.Cleanup(ts.Close)
	return &webhookServer{&server{ts}, db}
}

func (s *webhookServer) createWebhook(t *testing.T, body string) apiWebhook {
	t.Helper()
	status, h, b := s.do(t, "POST", "/api/webhooks", body, jsonCT)
	wantStatus(t, "POST", "/api/webhooks", status, http.StatusCreated, b)
	w := decode[apiWebhook](t, b)
	if loc := h.Get("Location"); loc != fmt.Sprintf("/api/webhooks/%d", w.ID) {
		t.Errorf("Location %q for webhook %d", loc, w.ID)
	}
	return w
}

func (s *webhookServer) getWebhook(t *testing.T, id int64) apiWebhook {
	t.Helper()
	path := fmt.Sprintf("/api/webhooks/%d", id)
	status, _, b := s.do(t, "GET", path, nil, nil)
	wantStatus(t, "GET", path, status, http.StatusOK, b)
	return decode[apiWebhook](t, b)
}

// webhookEvents returns the webhook events of the log.
func (s *webhookServer) webhookEvents(t *testing.T) []map[string]json.RawMessage {
	t.Helper()
	records, err := s.db.Events(context.Background(), tasks.EventQuery{
		Types: []tasks.EventType{tasks.EventWebhookCreated, tasks.EventWebhookUpdated, tasks.EventWebhookDeleted}, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]json.RawMessage
	for _, r := range records {
		out = append(out, decode[map[string]json.RawMessage](t, r.Data))
	}
	return out
}

func checkSecret(t *testing.T, secret string) {
	t.Helper()
	b64, ok := strings.CutPrefix(secret, "whsec_")
	key, err := base64.StdEncoding.DecodeString(b64)
	if !ok || err != nil || len(key) < 24 || len(key) > 64 {
		t.Errorf("secret %q is not whsec_ and the base64 of 24 to 64 bytes", secret)
	}
}

func TestWebhookCreate(t *testing.T) {
	s := newWebhookServer(t, false)
	s.createTitled(t, "before")
	w := s.createWebhook(t, `{"url": "https://hooks.example.com/taskhub", "filters": {"types": ["task_created"], "project": ["site"]}}`)
	checkSecret(t, w.Secret)
	if !w.Enabled || w.URL != "https://hooks.example.com/taskhub" || len(w.Filters["types"]) != 1 || w.Filters["project"][0] != "site" {
		t.Errorf("created %+v", w)
	}
	// It starts at the end of the log: after the task made before it.
	if w.State["cursor"] != 1.0 || w.State["lag"] != 0.0 || w.State["failures"] != 0.0 || w.State["last_status"] != 0.0 ||
		w.State["next_attempt_at"] != nil || w.State["disabled_reason"] != "" {
		t.Errorf("state of a new endpoint %v", w.State)
	}
	got := s.getWebhook(t, w.ID)
	if got.Secret != "" {
		t.Error("GET shows the secret")
	}
	status, _, b := s.do(t, "GET", "/api/webhooks", nil, nil)
	wantStatus(t, "GET", "/api/webhooks", status, http.StatusOK, b)
	if list := decode[struct{ Webhooks []apiWebhook }](t, b); len(list.Webhooks) != 1 || list.Webhooks[0].Secret != "" {
		t.Errorf("list %s", b)
	}
	events := s.webhookEvents(t)
	if len(events) != 1 || string(events[0]["type"]) != `"webhook_created"` || string(events[0]["actor"]) != `"anonymous"` {
		t.Fatalf("events %v", events)
	}
	if strings.Contains(string(events[0]["webhook"]), w.Secret) || strings.Contains(string(events[0]["webhook"]), "secret\"") {
		t.Errorf("the event shows the secret: %s", events[0]["webhook"])
	}
	if ev := decode[apiWebhook](t, events[0]["webhook"]); ev.ID != w.ID || ev.URL != w.URL {
		t.Errorf("the event's webhook %s", events[0]["webhook"])
	}

	// A given secret is kept; from_seq starts the endpoint further back, and lag counts
	// what its filters match.
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 24)))
	s.createTitled(t, "after")
	w2 := s.createWebhook(t, fmt.Sprintf(`{"url": "http://hooks.example.com:8080/x?a=b", "secret": %q, "from_seq": 1, "enabled": false,
		"filters": {"types": ["task_created"]}}`, secret))
	if w2.Secret != secret || w2.Enabled || w2.State["cursor"] != 0.0 {
		t.Errorf("created %+v", w2)
	}
	if lag := s.getWebhook(t, w2.ID).State["lag"]; lag != 2.0 {
		t.Errorf("lag %v, want 2: the two task_created events", lag)
	}
}

func TestWebhookBadInput(t *testing.T) {
	s := newWebhookServer(t, false)
	s.createTitled(t, "one")
	ok := `"url": "https://hooks.example.com/x"`
	for _, tc := range []struct{ body, field string }{
		{`{}`, "url"},
		{`{"url": ""}`, "url"},
		{`{"url": 7}`, "url"},
		{`{"url": "ftp://hooks.example.com/x"}`, "url"},
		{`{"url": "hooks.example.com/x"}`, "url"},
		{`{"url": "https://user:pw@hooks.example.com/x"}`, "url"},
		{`{"url": "https://hooks.example.com/x#frag"}`, "url"},
		{`{"url": "https://hooks.example.com:99999/x"}`, "url"},
		{`{"url": "http://127.0.0.1:9/x"}`, "url"},
		{`{"url": "http://[::1]/x"}`, "url"},
		{`{"url": "http://10.1.2.3/x"}`, "url"},
		{`{"url": "http://192.168.0.10/x"}`, "url"},
		{`{"url": "http://169.254.169.254/latest/meta-data"}`, "url"},
		{`{"url": "http://0.0.0.0/x"}`, "url"},
		{`{"url": "http://224.0.0.1/x"}`, "url"},
		{`{"url": "http://[::ffff:127.0.0.1]/x"}`, "url"},
		{`{"url": "http://[fd00::1]/x"}`, "url"},
		{`{` + ok + `, "secret": "nope"}`, "secret"},
		{`{` + ok + `, "secret": "whsec_c2hvcnQ="}`, "secret"},
		{`{` + ok + `, "enabled": "yes"}`, "enabled"},
		{`{` + ok + `, "enabled": null}`, "enabled"},
		{`{` + ok + `, "from_seq": 5}`, "from_seq"},
		{`{` + ok + `, "from_seq": -1}`, "from_seq"},
		{`{` + ok + `, "from_seq": "1"}`, "from_seq"},
		{`{` + ok + `, "filters": []}`, "filters"},
		{`{` + ok + `, "filters": {"types": ["task_made"]}}`, "filters.types"},
		{`{` + ok + `, "filters": {"types": "task_created"}}`, "filters.types"},
		{`{` + ok + `, "filters": {"status": ["doing"]}}`, "filters.status"},
		{`{` + ok + `, "filters": {"source": ["web"]}}`, "filters.source"},
		{`{` + ok + `, "filters": {"task_id": [0]}}`, "filters.task_id"},
		{`{` + ok + `, "filters": {"task_id": ["1"]}}`, "filters.task_id"},
		{`{` + ok + `, "filters": {"projects": ["a"]}}`, "filters.projects"},
		{`{` + ok + `, "filters": {"label": ["a"], "label": ["b"]}}`, "filters.label"},
		{`{` + ok + `, "id": 3}`, "id"},
		{`{` + ok + `, "state": {}}`, "state"},
		{`{` + ok + `, "colour": "red"}`, "colour"},
	} {
		status, _, b := s.do(t, "POST", "/api/webhooks", tc.body, jsonCT)
		e := decode[struct {
			Error struct{ Code, Message, Field string }
		}](t, b)
		if status != http.StatusBadRequest || e.Error.Code != "invalid_argument" || e.Error.Field != tc.field || e.Error.Message == "" {
			t.Errorf("%s: %d %s, want 400 naming %s", tc.body, status, b, tc.field)
		}
	}
	status, _, b := s.do(t, "GET", "/api/webhooks", nil, nil)
	if status != http.StatusOK || string(b) != "{\"webhooks\":[]}\n" {
		t.Errorf("after bad input, the endpoints: %d %s", status, b)
	}
	if last, _ := s.db.LastSeq(context.Background()); last != 1 {
		t.Errorf("after bad input the log ends at %d, want 1: nothing changed", last)
	}
	if status, _, b := s.do(t, "POST", "/api/webhooks", `{`+ok+`}`, nil); status != http.StatusUnsupportedMediaType {
		t.Errorf("a body without Content-Type: %d %s", status, b)
	}
	for _, path := range []string{"/api/webhooks/0", "/api/webhooks/01", "/api/webhooks/x"} {
		if status, _, b := s.do(t, "GET", path, nil, nil); status != http.StatusBadRequest || !strings.Contains(string(b), `"field":"id"`) {
			t.Errorf("GET %s: %d %s", path, status, b)
		}
	}
	if status, _, _ := s.do(t, "GET", "/api/webhooks/9", nil, nil); status != http.StatusNotFound {
		t.Errorf("GET of a missing webhook: %d", status)
	}
}

func TestWebhookAllowPrivate(t *testing.T) {
	s := newWebhookServer(t, true)
	for _, u := range []string{"http://127.0.0.1:9/x", "http://[::1]:9/x", "http://10.1.2.3/x"} {
		s.createWebhook(t, fmt.Sprintf(`{"url": %q}`, u))
	}
	if status, _, b := s.do(t, "POST", "/api/webhooks", `{"url": "http://u:p@127.0.0.1/x"}`, jsonCT); status != http.StatusBadRequest {
		t.Errorf("user info with private targets allowed: %d %s", status, b)
	}
}

func TestWebhookUpdateRotateDelete(t *testing.T) {
	s := newWebhookServer(t, false)
	w := s.createWebhook(t, `{"url": "https://hooks.example.com/a"}`)
	path := fmt.Sprintf("/api/webhooks/%d", w.ID)
	patch := func(body string, want int) []byte {
		t.Helper()
		status, _, b := s.do(t, "PATCH", path, body, patchCT(""))
		wantStatus(t, "PATCH", path, status, want, b)
		return b
	}
	got := decode[apiWebhook](t, patch(`{"url": "https://hooks.example.com/b", "enabled": false, "filters": {"label": ["x"]}}`, http.StatusOK))
	if got.URL != "https://hooks.example.com/b" || got.Enabled || got.Filters["label"][0] != "x" || got.Secret != "" {
		t.Errorf("patched %+v", got)
	}
	patch(`{"enabled": false}`, http.StatusOK) // no change: no event
	for body, field := range map[string]string{
		`{"url": null}`:                           "url",
		`{"url": "http://127.0.0.1/"}`:            "url",
		`{"enabled": 1}`:                          "enabled",
		`{"filters": {"types": ["x"]}}`:           "filters.types",
		`{"secret": "whsec_x"}`:                   "secret",
		`{"created_at": "2026-01-01T00:00:00Z"}`:  "created_at",
		`{"url": "https://hooks.example.com/c",}`: "",
	} {
		if b := patch(body, http.StatusBadRequest); !strings.Contains(string(b), `"field":"`+field+`"`) && field != "" {
			t.Errorf("PATCH %s: %s, want the field %s", body, b, field)
		}
	}
	if now := s.getWebhook(t, w.ID); now.URL != "https://hooks.example.com/b" || now.Filters["label"][0] != "x" {
		t.Errorf("a bad patch changed the endpoint: %+v", now)
	}

	rotatePath := path + "/rotate-secret"
	status, _, b := s.do(t, "POST", rotatePath, nil, nil)
	wantStatus(t, "POST", rotatePath, status, http.StatusOK, b)
	rotated := decode[apiWebhook](t, b)
	checkSecret(t, rotated.Secret)
	if rotated.Secret == w.Secret || rotated.PreviousSecretExpiresAt == nil {
		t.Errorf("rotated %+v", rotated)
	} else if until, err := time.Parse(time.RFC3339, *rotated.PreviousSecretExpiresAt); err != nil || time.Until(until) < 23*time.Hour || time.Until(until) > 25*time.Hour {
		t.Errorf("the old secret signs until %v, want in 24h", *rotated.PreviousSecretExpiresAt)
	}
	given := "whsec_" + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("g", 32)))
	status, _, b = s.do(t, "POST", rotatePath, fmt.Sprintf(`{"secret": %q}`, given), jsonCT)
	if status != http.StatusOK || decode[apiWebhook](t, b).Secret != given {
		t.Errorf("rotate to a given secret: %d %s", status, b)
	}
	if status, _, b := s.do(t, "POST", rotatePath, `{"secret": "whsec_"}`, jsonCT); status != http.StatusBadRequest || !strings.Contains(string(b), `"field":"secret"`) {
		t.Errorf("rotate to a bad secret: %d %s", status, b)
	}
	if s.getWebhook(t, w.ID).Secret != "" {
		t.Error("GET shows the secret after a rotation")
	}

	status, _, b = s.do(t, "DELETE", path, nil, nil)
	wantStatus(t, "DELETE", path, status, http.StatusNoContent, b)
	if status, _, _ := s.do(t, "GET", path, nil, nil); status != http.StatusNotFound {
		t.Errorf("GET after DELETE: %d", status)
	}
	if status, _, _ := s.do(t, "DELETE", path, nil, nil); status != http.StatusNotFound {
		t.Errorf("a second DELETE: %d", status)
	}

	var types []string
	for _, e := range s.webhookEvents(t) {
		types = append(types, string(e["type"]))
		for _, secret := range []string{w.Secret, rotated.Secret, given} {
			if strings.Contains(string(e["webhook"]), secret) || strings.Contains(string(e["changes"]), secret) {
				t.Errorf("an event shows a secret: %v", e)
			}
		}
	}
	want := `"webhook_created" "webhook_updated" "webhook_updated" "webhook_updated" "webhook_deleted"`
	if strings.Join(types, " ") != want {
		t.Errorf("events %s, want %s", strings.Join(types, " "), want)
	}
}

func TestWebhookReplayAndDeliveries(t *testing.T) {
	s := newWebhookServer(t, false)
	for i := range 3 {
		s.createTitled(t, fmt.Sprint("task ", i))
	}
	w := s.createWebhook(t, `{"url": "https://hooks.example.com/a"}`)
	path := fmt.Sprintf("/api/webhooks/%d", w.ID)
	status, _, b := s.do(t, "POST", path+"/replay", `{"from_seq": 2}`, jsonCT)
	wantStatus(t, "POST", path+"/replay", status, http.StatusOK, b)
	if got := decode[apiWebhook](t, b); got.State["cursor"] != 1.0 || got.State["lag"] != 4.0 {
		t.Errorf("after a replay from 2: %v, want cursor 1 and lag 4 (seqs 2, 3, webhook_created 4, the replay's webhook_updated 5)", got.State)
	}
	for body, field := range map[string]string{`{}`: "from_seq", `{"from_seq": 99}`: "from_seq", `{"seq": 1}`: "seq"} {
		if status, _, b := s.do(t, "POST", path+"/replay", body, jsonCT); status != http.StatusBadRequest || !strings.Contains(string(b), `"field":"`+field+`"`) {
			t.Errorf("replay %s: %d %s", body, status, b)
		}
	}
	if status, _, _ := s.do(t, "POST", "/api/webhooks/77/replay", `{"from_seq": 1}`, jsonCT); status != http.StatusNotFound {
		t.Errorf("replay of a missing endpoint: %d", status)
	}

	status, _, b = s.do(t, "GET", path+"/deliveries", nil, nil)
	wantStatus(t, "GET", path+"/deliveries", status, http.StatusOK, b)
	if string(b) != "{\"deliveries\":[],\"next_cursor\":\"\"}\n" {
		t.Errorf("no deliveries yet: %s", b)
	}
	err := s.db.WriteWebhooks(context.Background(), func(tx tasks.WebhookTx) error {
		h, err := tx.Webhook(w.ID)
		if err != nil {
			return err
		}
		for seq := int64(1); seq <= 5; seq++ {
			if _, err := tx.SetWebhookState(w.ID, h.Revision, tasks.WebhookState{Cursor: seq, LastStatus: 200}, &tasks.WebhookDelivery{
				Seq: seq, Attempt: 1, Status: 200, Time: tasks.NewTime(time.Now()), Duration: 2500 * time.Microsecond}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	logID, _ := s.db.LogID(context.Background())
	var seqs []int64
	for cursor := ""; ; {
		status, _, b := s.do(t, "GET", path+"/deliveries?limit=2&cursor="+cursor, nil, nil)
		wantStatus(t, "GET", path+"/deliveries", status, http.StatusOK, b)
		page := decode[webhooks.DeliveryPage](t, b)
		for _, d := range page.Deliveries {
			seqs = append(seqs, d.Seq)
			if d.WebhookID != webhooks.MessageID(logID, d.Seq) || d.DurationMS != 2.5 || d.Status != 200 || d.Attempt != 1 {
				t.Errorf("delivery %+v", d)
			}
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if fmt.Sprint(seqs) != "[5 4 3 2 1]" {
		t.Errorf("the deliveries page by page: %v, want newest first", seqs)
	}
	for query, field := range map[string]string{"?limit=0": "limit", "?limit=1001": "limit", "?cursor=nope": "cursor", "?page=2": "page"} {
		if status, _, b := s.do(t, "GET", path+"/deliveries"+query, nil, nil); status != http.StatusBadRequest || !strings.Contains(string(b), `"field":"`+field+`"`) {
			t.Errorf("deliveries%s: %d %s", query, status, b)
		}
	}
	if status, _, _ := s.do(t, "GET", "/api/webhooks/77/deliveries", nil, nil); status != http.StatusNotFound {
		t.Errorf("deliveries of a missing endpoint: %d", status)
	}
}

func TestWebhookAdminScope(t *testing.T) {
	db := openDB(t)
	auth := api.NewAuth(mustParseTokens(t, `[{"name":"rw","sha256":"`+hexA+`","scopes":["read","write"]}]`))
	ts := httptest.NewServer(api.New(api.Config{
		Service: tasks.NewService(db), Logger: slog.New(slog.DiscardHandler), Auth: auth,
		Webhooks: webhooks.NewService(webhooks.Config{Store: db, Vocabulary: api.StreamVocabulary()}),
	}))
	defer ts.Close()
	s := &server{ts}
	bearer := hdr{"Authorization": "Bearer secret", "Content-Type": "application/json"}
	for _, r := range []struct{ method, path string }{{"GET", "/api/webhooks"}, {"POST", "/api/webhooks"}, {"GET", "/api/webhooks/1/deliveries"}} {
		if status, _, b := s.do(t, r.method, r.path, `{"url": "https://hooks.example.com/a"}`, bearer); status != http.StatusForbidden {
			t.Errorf("%s %s with a read-write token: %d %s, want 403", r.method, r.path, status, b)
		}
	}
}

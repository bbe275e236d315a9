package mcptools

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"taskhub/broadcaster"

	"github.com/mark3labs/mcp-go/server"
)

// Defaults of the Streamable HTTP sessions' bounds.
const (
	DefaultSessionIdle = 30 * time.Minute
	DefaultMaxSessions = 1000
)

// sessionIDPrefix starts every session id, as mcp-go's own do; 130 random bits follow.
const sessionIDPrefix = "mcp-session-"

// Why a session could not be opened.
var (
	errSessionsFull   = errors.New("sessions full")
	errCallerShare    = errors.New("caller's share of the sessions full")
	errUnknownSession = errors.New("no such session")
)

// session is one Streamable HTTP session of the handshake era: opened by initialize,
// ended by DELETE, by being idle, or by the server closing.
type session struct {
	id       string
	owner    string // the caller that opened it ("" without tokens); only it may use it
	client   string // clientInfo.name of its initialize
	protocol string // the revision negotiated
	opened   time.Time
	active   time.Time // its last request
	minted   bool      // mcp-go took its id: the initialize got as far as answering
	streams  map[*context.CancelFunc]struct{}
}

// sessionTable is the sessions of one Streamable HTTP transport. It is mcp-go's
// session id manager (Generate, Validate, Terminate): an id is valid while its
// session is in the table. mcp-go's sweeper ends idle sessions through Terminate.
type sessionTable struct {
	max, perCaller int
	idle           time.Duration // mcp-go's sweeper's, for messages

	mu      sync.Mutex
	byID    map[string]*session
	byOwner map[string]int
}

func newSessionTable(max, perCaller int, idle time.Duration) *sessionTable {
	return &sessionTable{max: max, perCaller: perCaller, idle: idle, byID: map[string]*session{}, byOwner: map[string]int{}}
}

// reserve opens a session for owner, whose initialize is being served, unless the
// table or owner's share of it is full.
func (t *sessionTable) reserve(owner string, now time.Time) (*session, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case len(t.byID) >= t.max:
		return nil, errSessionsFull
	case t.perCaller > 0 && t.byOwner[owner] >= t.perCaller:
		return nil, errCallerShare
	}
	s := &session{id: sessionIDPrefix + rand.Text(), owner: owner, opened: now, active: now, streams: map[*context.CancelFunc]struct{}{}}
	t.byID[s.id] = s
	t.byOwner[owner]++
	return s, nil
}

// count returns how many sessions are open, and how many of them are caller's.
func (t *sessionTable) count(caller string) (open, callers int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byID), t.byOwner[caller]
}

// mint records that mcp-go took s's id for its initialize.
func (t *sessionTable) mint(s *session) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s.minted = true
	return s.id
}

// release ends s if mcp-go never took its id: its initialize was refused early.
func (t *sessionTable) release(s *session) {
	t.mu.Lock()
	minted := s.minted
	t.mu.Unlock()
	if !minted {
		t.end(s.id)
	}
}

// use returns the session id for a request of owner, marking it active, or
// errUnknownSession when there is none (never opened, ended, or another caller's).
func (t *sessionTable) use(id, owner string, now time.Time) (*session, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.byID[id]
	if !ok || s.owner != owner {
		return nil, errUnknownSession
	}
	s.active = now
	return s, nil
}

// touch marks s active, as at the end of a request.
func (t *sessionTable) touch(s *session, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s.active = now
}

// stream records cancel as ending a stream of s, until the returned func; it reports
// false, recording nothing, when s has ended meanwhile.
func (t *sessionTable) stream(s *session, cancel context.CancelFunc) (func(), bool) {
	key := &cancel
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byID[s.id] != s {
		return nil, false
	}
	s.streams[key] = struct{}{}
	return func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		delete(s.streams, key)
	}, true
}

// describe records what the initialize of session id said and agreed.
func (t *sessionTable) describe(id, client, protocol string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s, ok := t.byID[id]; ok {
		s.client, s.protocol = client, protocol
	}
}

// end removes the session id, if it is open, and closes its streams.
func (t *sessionTable) end(id string) {
	t.mu.Lock()
	s, ok := t.byID[id]
	if ok {
		delete(t.byID, id)
		if t.byOwner[s.owner]--; t.byOwner[s.owner] == 0 {
			delete(t.byOwner, s.owner)
		}
	}
	var cancels []*context.CancelFunc
	if ok {
		for c := range s.streams {
			cancels = append(cancels, c)
		}
	}
	t.mu.Unlock()
	for _, c := range cancels {
		(*c)()
	}
}

// SessionInfo is what an admin sees of one open Streamable HTTP session
// (GET /mcp/sessions).
type SessionInfo struct {
	ID            string    `json:"id"`
	Caller        string    `json:"caller,omitempty"` // the token's name, on a server with tokens
	Client        string    `json:"client"`           // clientInfo.name of its initialize
	Protocol      string    `json:"protocol"`         // the revision negotiated
	Streams       int       `json:"streams"`          // its open GET streams
	Subscriptions []string  `json:"subscriptions"`    // the resources it subscribed to
	OpenedAt      time.Time `json:"opened_at"`
	LastActiveAt  time.Time `json:"last_active_at"` // the start or end of its last request
}

// snapshot lists the open sessions, oldest first; subscriptions gives a session's.
func (t *sessionTable) snapshot(subscriptions func(id string) []string) []SessionInfo {
	t.mu.Lock()
	list := make([]SessionInfo, 0, len(t.byID))
	for _, s := range t.byID {
		list = append(list, SessionInfo{ID: s.id, Caller: s.owner, Client: s.client, Protocol: s.protocol,
			Streams: len(s.streams), OpenedAt: s.opened, LastActiveAt: s.active})
	}
	t.mu.Unlock()
	for i := range list {
		list[i].Subscriptions = subscriptions(list[i].ID)
	}
	slices.SortFunc(list, func(a, b SessionInfo) int {
		return cmp.Or(a.OpenedAt.Compare(b.OpenedAt), cmp.Compare(a.ID, b.ID))
	})
	return list
}

// ResolveSessionIdManager is mcp-go's way to the table: a request that is an
// initialize carries its reserved session (reservedKey), whose id Generate hands out.
func (t *sessionTable) ResolveSessionIdManager(r *http.Request) server.SessionIdManager {
	if r != nil {
		if s, ok := r.Context().Value(reservedKey{}).(*session); ok {
			return idManager{t, s}
		}
	}
	return idManager{t, nil}
}

type reservedKey struct{}

// idManager is mcp-go's SessionIdManager over a table, for one request.
type idManager struct {
	t        *sessionTable
	reserved *session // the initialize's session; nil on other requests
}

// Generate returns the reserved session's id. Handler reserves one for every
// initialize of the handshake era, the only requests mcp-go asks an id for (a GET
// without an id is refused before it gets there).
func (m idManager) Generate() string {
	if m.reserved == nil {
		return ""
	}
	return m.t.mint(m.reserved)
}

// Validate refuses an id that is not of an open session.
func (m idManager) Validate(id string) (bool, error) {
	m.t.mu.Lock()
	defer m.t.mu.Unlock()
	if _, ok := m.t.byID[id]; !ok {
		return false, fmt.Errorf("session %q: %w", id, errUnknownSession)
	}
	return false, nil
}

// Terminate ends the session: on DELETE, when mcp-go's sweeper finds it idle, and
// when the transport shuts down.
func (m idManager) Terminate(id string) (bool, error) {
	m.t.end(id)
	return false, nil
}

// serveSessions answers GET /mcp/sessions: the open sessions of the table.
func (s *Server) serveSessions(w http.ResponseWriter, r *http.Request, t *sessionTable) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		broadcaster.WriteError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" "+PathSessions+" is not allowed; use GET", "")
		return
	}
	list := t.snapshot(s.subs.uris)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{"sessions": list, "max_sessions": t.max, "max_sessions_per_caller": t.perCaller})
}

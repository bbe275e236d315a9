// Package mcptools exposes tasks.Service to MCP clients such as Claude Code: its tools,
// the resource template taskhub://tasks/{id} with subscriptions, the prompts that
// start an agent's work (with completions of their arguments from the tasks), and the
// server instructions that teach an agent the workflow. It serves Streamable HTTP and the
// older SSE transport through one http.Handler, and stdio. Every rule lives in the
// Service; the tools only translate arguments and results.
package mcptools

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"taskhub/broadcaster"
	"taskhub/tasks"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// Name is the server's name in the initialize handshake.
const Name = "taskhub"

// UnnamedClient is the actor name of changes made by a client that gave no name in
// its initialize request (or, on the stateless protocol, in its request metadata).
const UnnamedClient = "mcp-client"

// Instructions teach a connecting agent how to work with TaskHub. The priority order
// is the domain's.
var Instructions = fmt.Sprintf(instructions, priorityOrder())

// priorityOrder lists the priorities highest first: "urgent > high > medium > low".
func priorityOrder() string {
	p := slices.Clone(tasks.Priorities)
	slices.Reverse(p)
	parts := make([]string, len(p))
	for i, v := range p {
		parts[i] = string(v)
	}
	return strings.Join(parts, " > ")
}

const instructions = `TaskHub is a shared task board for AI agents and people; every change is broadcast live.

Workflow for an agent:
1. Find work: claim_task with no task_id claims the next ready task (status todo, unassigned or already assigned to you, every task in its depends_on done), highest priority first (%s), then oldest. Pass project (and optionally label) to stay within your repository's tasks. claim_task with a task_id claims that task, and fails if someone else holds it or it is not ready.
2. Work on it: the claimed task is in_progress and assigned to you, under a lease (lease_expires_at; pass lease_seconds to claim_task for another length). Renew it with heartbeat_task before it runs out (any change you make to the task renews it too), or the task goes back to todo for another agent. Report how far you are with report_progress (0 to 100, and a short message). Move it on with update_task_status (status review or blocked, with a short note saying why), or hand it back with release_task and a note for the next agent.
3. Finish: update_task_status with status done and a note; tasks that depend on it become ready. Only done unblocks dependents: if you cancel a task instead, remove it from the depends_on of the tasks that wait on it.

Other rules:
- Always pass project when several repositories share the hub: list_tasks, claim_task and create_task all take it.
- depends_on lists the ids of tasks that must be done first; a cycle is refused.
- To change other fields use update_task; pass expected_version (the task's version) to avoid overwriting someone else's change.
- list_events with after (the last seq you saw) shows what changed since; wait_for_events, with the same filters, waits up to a minute for the next such event (until a task is done, for new work in a project) instead of polling.
- Leave what the next agent on a task should know (findings, decisions, what is left) with add_note; read a task's notes with list_notes, oldest first.
- Read a task as the resource taskhub://tasks/{id}; subscribe to it to be told when it changes.
- A tool that fails returns isError with a message naming the argument at fault; nothing was changed.`

// Config is what a Server is built from.
type Config struct {
	Service *tasks.Service
	Logger  *slog.Logger
	Version string // the server's version in the initialize handshake
	// Caller, if set, returns the name of the authenticated caller of a request (the
	// token's name), which wins over the client's own name. Over HTTP the tools see
	// the request's context, so auth middleware in front of Handler can set it.
	Caller func(context.Context) (string, bool)
	// Waits, if set and fed by the tailer (tasklog.Wake), holds the calls of the tool
	// wait_for_events, which is offered only then.
	Waits *broadcaster.Waits
	// Track, if set, is told of every HTTP stream (a Streamable HTTP GET, an SSE
	// stream) with its request's context and a func that ends it, until the returned
	// untrack; a stream it refuses (its credentials no longer hold) is not served. It
	// lets whoever checks credentials end a stream when they are revoked.
	Track func(ctx context.Context, end func()) (untrack func(), ok bool)
}

// Server is TaskHub's MCP server.
type Server struct {
	svc    *tasks.Service
	logger *slog.Logger
	caller func(context.Context) (string, bool)
	waits  *broadcaster.Waits
	mcp    *server.MCPServer
	subs   *subscriptions

	closing context.Context // done once Close is called: every HTTP stream ends
	close   context.CancelFunc

	track func(ctx context.Context, end func()) (untrack func(), ok bool)

	mu        sync.Mutex
	shutdowns []func(context.Context) // of the transports Handler made
	tables    []*sessionTable         // their sessions
}

// New returns a Server with every tool and resource registered.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	if cfg.Caller == nil {
		cfg.Caller = func(context.Context) (string, bool) { return "", false }
	}
	if cfg.Track == nil {
		cfg.Track = func(context.Context, func()) (func(), bool) { return func() {}, true }
	}
	s := &Server{svc: cfg.Service, logger: cfg.Logger, caller: cfg.Caller, waits: cfg.Waits, track: cfg.Track}
	s.closing, s.close = context.WithCancel(context.Background())
	hooks := &server.Hooks{}
	s.subs = newSubscriptions(hooks)
	hooks.AddAfterInitialize(func(ctx context.Context, _ any, req *mcp.InitializeRequest, res *mcp.InitializeResult) {
		if session := server.ClientSessionFromContext(ctx); session != nil {
			s.describeSession(session.SessionID(), req.Params.ClientInfo.Name, res.ProtocolVersion)
		}
	})
	tools := slices.Concat(s.tools(), s.noteTools(), s.agentTools())
	s.mcp = server.NewMCPServer(Name, cfg.Version,
		server.WithInstructions(Instructions),
		server.WithToolCapabilities(false),
		server.WithResourceCapabilities(true, false),
		server.WithPromptCapabilities(false),
		server.WithCompletions(),
		server.WithPromptCompletionProvider(completions{s}),
		server.WithResourceCompletionProvider(completions{s}),
		server.WithToolHandlerMiddleware(newValidator(tools).middleware),
		server.WithOutputSchemaValidation(),
		server.WithRecovery(),
		server.WithHooks(hooks),
		server.WithLogger(cfg.Logger),
	)
	for _, t := range tools {
		s.mcp.AddTool(t.tool, t.handler)
	}
	s.addResources()
	s.addPrompts()
	return s
}

// Close ends every MCP stream over HTTP, so that a server shutting down need not wait
// for clients that stay connected, and stops the transports' background work (the
// session sweeper). Tool calls in progress are left to finish.
func (s *Server) Close() {
	s.close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, shutdown := range s.shutdowns {
		shutdown(ctx)
	}
	s.shutdowns = nil
}

// describeSession records what the initialize of the Streamable HTTP session id said.
func (s *Server) describeSession(id, client, protocol string) {
	s.mu.Lock()
	tables := s.tables
	s.mu.Unlock()
	for _, t := range tables {
		t.describe(id, client, protocol)
	}
}

// MCPServer returns the underlying mcp-go server, for in-process clients.
func (s *Server) MCPServer() *server.MCPServer { return s.mcp }

// ServeStdio serves one client over in and out until in closes (nil) or ctx ends
// (ctx's error).
func (s *Server) ServeStdio(ctx context.Context, in io.Reader, out io.Writer) error {
	stdio := server.NewStdioServer(s.mcp)
	stdio.SetErrorLogger(slog.NewLogLogger(s.logger.Handler(), slog.LevelError))
	return stdio.Listen(ctx, in, out)
}

// actor attributes a change to the caller: the authenticated name if there is one,
// else the name the client gave (UnnamedClient when it gave none).
func (s *Server) actor(ctx context.Context) context.Context {
	name, ok := s.caller(ctx)
	if !ok || name == "" {
		name = UnnamedClient
		if session, ok := server.ClientSessionFromContext(ctx).(server.SessionWithClientInfo); ok {
			if n := session.GetClientInfo().Name; n != "" {
				name = n
			}
		}
	}
	return tasks.WithActor(ctx, tasks.Actor{Source: tasks.SourceMCP, Name: name})
}

// toolError is the result of a call that failed: a domain error becomes an isError
// result naming its argument; anything else is logged and reported vaguely.
func (s *Server) toolError(tool string, err error) *mcp.CallToolResult {
	e, ok := asError(err)
	if !ok || e.Code == tasks.EInternal {
		s.logger.Error("tool failed", "tool", tool, "err", err)
		return mcp.NewToolResultError("internal error: the change was not made; try again")
	}
	msg := e.Code + ": " + e.Message
	if e.Field != "" {
		msg += " (argument " + e.Field + ")"
	}
	return mcp.NewToolResultError(msg)
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"taskhub/broadcaster"
	"taskhub/tasks"
	"taskhub/tasks/sqlite"
)

// browser is one headless Chromium tab, with what its page wrote to the console.
type browser struct {
	ctx context.Context

	mu       sync.Mutex
	problems []string // console.error calls and uncaught exceptions
}

// newBrowser starts Debian's chromium headless for the test, or skips the test when
// it is not installed, except in CI (CI=...), where .ci/run installs it.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is not installed, and CI must run the browser tests (.ci/run installs it)")
		}
		t.Skip("chromium is not installed (apt-get install chromium): skipping the dashboard's browser tests")
	}
	profile, err := os.MkdirTemp("", "taskhub-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	// A hard limit for the whole browser: a stuck page must not hang the test run.
	limit, cancelLimit := context.WithTimeout(context.Background(), 90*time.Second)
	alloc, cancelAlloc := chromedp.NewExecAllocator(limit,
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.WindowSize(1440, 1000),
		chromedp.UserDataDir(profile),
	)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	b := &browser{ctx: ctx}
	console := chromedp.Console(ctx) // starts the browser and the tab
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range console {
			if err != nil {
				return
			}
			// Browser log entries (Source set) include the failed requests a
			// dropped stream makes while it reconnects: expected, not page errors.
			if m.IsException() || (m.Type == chromedp.ConsoleError && m.Source == "") {
				b.mu.Lock()
				b.problems = append(b.problems, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line))
				b.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
		cancelLimit()
		<-done
		// Chromium's helpers can write to the profile a moment after it exits.
		for range 50 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return b
}

// do runs actions in the tab.
func (b *browser) do(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// wait polls a JavaScript expression in the page until it is truthy, and returns how
// long that took.
func (b *browser) wait(t *testing.T, within time.Duration, what, expr string) time.Duration {
	t.Helper()
	start := time.Now()
	_, err := chromedp.Run(b.ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingTimeout(within), chromedp.WithPollingInterval(20*time.Millisecond)))
	if err != nil {
		t.Fatalf("waited %s for %s: %v\n(%s)", within, what, err, expr)
	}
	return time.Since(start)
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, b *browser, expr string) T {
	t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// screenshot saves the page at a width and height, light or dark, as dir/name: the
// whole page when full, else what the viewport shows.
func (b *browser) screenshot(t *testing.T, dir, name string, width, height int64, dark, full bool) {
	t.Helper()
	scheme := "light"
	if dark {
		scheme = "dark"
	}
	var opts []chromedp.EmulateViewportOption
	if width < 600 {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateScale(2))
	}
	b.do(t, "emulate "+name,
		chromedp.Func(func(ctx context.Context, target *chromedp.Target) error {
			_, err := cdp.Call(ctx, target, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
				Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
			})
			return err
		}),
		chromedp.EmulateViewport(width, height, opts...),
		chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`),
	)
	time.Sleep(150 * time.Millisecond) // let the layout and the card animation settle
	capture := chromedp.CaptureScreenshot()
	if full {
		capture = chromedp.FullScreenshot(100)
	}
	png, err := chromedp.Run(b.ctx, capture)
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// artifactDir is where the screenshots go: $TASKHUB_TEST_ARTIFACTS when set, else the
// test's artifact directory (kept with go test -artifacts, under -outputdir).
func artifactDir(t *testing.T) string {
	if dir := os.Getenv("TASKHUB_TEST_ARTIFACTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.ArtifactDir()
}

// card is a JavaScript expression for a task's card (or null).
func card(id int64) string {
	return fmt.Sprintf(`document.querySelector('#board [data-task-id="%d"]')`, id)
}

// cardIn is a JavaScript condition: the task's card is in the column of status, and
// says so.
func cardIn(id int64, status string) string {
	return fmt.Sprintf(`(c => !!c && c.dataset.status === %q && c.closest('[data-column]').dataset.column === %q)(%s)`, status, status, card(id))
}

func getTask(t *testing.T, base string, id int64) (task struct {
	ID       int64
	Title    string
	Status   string
	Priority string
	Labels   []string
	Version  int64
}) {
	t.Helper()
	call(t, http.MethodGet, fmt.Sprintf("%s/api/tasks/%d", base, id), "", http.StatusOK, &task)
	return task
}

// burst changes the tasks ids, n changes in all, from clients at once.
func burst(base string, ids []int64, n, clients int) error {
	work := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for i := range work {
				body := fmt.Sprintf(`{"description":"burst %d"}`, i)
				req, err := http.NewRequest(http.MethodPatch, fmt.Sprintf("%s/api/tasks/%d", base, ids[i%len(ids)]), strings.NewReader(body))
				if err != nil {
					errs <- err
					continue
				}
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					errs <- err
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs <- fmt.Errorf("PATCH %s: %s", req.URL, resp.Status)
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// TestDashboard drives the dashboard in headless Chromium against a real server: REST
// changes appear live, the page's own actions are stored, a restart of the server
// loses and doubles nothing, and the page logs no errors.
func TestDashboard(t *testing.T) {
	b := newBrowser(t)
	dir := artifactDir(t)
	db := filepath.Join(t.TempDir(), "taskhub.db")
	base, stop := serveAt(t, "127.0.0.1:0", db)

	// A board worth looking at.
	design := createTask(t, base, `{"title":"Design the event log","priority":"high","assignee":"alice","project":"core","labels":["design","storage"]}`)
	broker := createTask(t, base, `{"title":"SSE broadcaster with replay","priority":"urgent","assignee":"claude-code","project":"core","labels":["stream"],"depends_on":[`+fmt.Sprint(design)+`]}`)
	docs := createTask(t, base, `{"title":"Write the README","description":"Install, run, API, stream.","assignee":"bob","project":"docs","labels":["docs"]}`)
	spare := createTask(t, base, `{"title":"Spike: websockets instead?","priority":"low","project":"core"}`)
	patchTask(t, base, design, `{"status":"done"}`)
	patchTask(t, base, broker, `{"status":"review"}`)

	b.do(t, "open the dashboard", chromedp.Navigate(base))
	b.wait(t, 5*time.Second, "the page to load the board and go live",
		`document.querySelector('#conn').dataset.state === 'live' && document.querySelectorAll('#board .card').length === 4`)

	// (a) A task created through REST appears within a second.
	live := createTask(t, base, `{"title":"Appears by itself","priority":"high","labels":["live"]}`)
	took := b.wait(t, time.Second, "the REST-created task's card", cardIn(live, "todo"))
	t.Logf("a task created through REST showed after %s", took)

	// (b) A status change through REST moves the card.
	patchTask(t, base, live, `{"status":"in_progress"}`)
	took = b.wait(t, time.Second, "the card to move to in_progress", cardIn(live, "in_progress"))
	t.Logf("a status change through REST showed after %s", took)

	// The card's buttons, from the keyboard: focus "move to Review" and press Enter.
	b.do(t, "move the card from the keyboard",
		chromedp.Focus(chromedp.CSS(fmt.Sprintf(`[data-task-id="%d"] [data-action="move"][data-to="review"]`, live))),
		chromedp.KeyEvent("\r"))
	b.wait(t, 2*time.Second, "the card to move to review", cardIn(live, "review"))
	if got := getTask(t, base, live).Status; got != "review" {
		t.Errorf("after the move button, the stored status is %q, want review", got)
	}

	// (d) A task created from form#new-task is stored.
	b.do(t, "fill form#new-task",
		chromedp.SendKeys(chromedp.CSS(`form#new-task input[name="title"]`), "Made in the browser"),
		chromedp.SetValue(chromedp.CSS(`form#new-task select[name="priority"]`), "urgent"),
		chromedp.SendKeys(chromedp.CSS(`form#new-task input[name="labels"]`), "ui, form"),
		chromedp.Click(chromedp.CSS(`form#new-task button[type="submit"]`)),
	)
	var made []struct {
		ID       int64
		Priority string
		Labels   []string
	}
	deadline := time.Now().Add(2 * time.Second)
	for len(made) == 0 && time.Now().Before(deadline) {
		var page struct {
			Tasks []struct {
				ID       int64
				Priority string
				Labels   []string
			}
		}
		call(t, http.MethodGet, base+"/api/tasks?q="+url.QueryEscape("Made in the browser"), "", http.StatusOK, &page)
		made = page.Tasks
		if len(made) == 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if len(made) != 1 || made[0].Priority != "urgent" || !slices.Equal(made[0].Labels, []string{"form", "ui"}) {
		t.Fatalf("tasks stored from the form: %+v, want one, urgent, labelled form and ui", made)
	}
	b.wait(t, time.Second, "the form's task on the board, once", fmt.Sprintf(
		`document.querySelectorAll('#board [data-task-id="%d"]').length === 1`, made[0].ID))

	// A conflict in the editor: someone else changes the task first; saving is refused
	// with a clear message, and the form shows the task as it now is.
	b.do(t, "edit a task",
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`[data-task-id="%d"] [data-action="edit"]`, docs))),
		chromedp.WaitVisible(chromedp.CSS(`#editor`)),
		chromedp.SetValue(chromedp.CSS(`#e-title`), "Write the README, mine"),
	)
	patchTask(t, base, docs, `{"title":"Write the README, theirs"}`)
	b.do(t, "save the stale edit", chromedp.Click(chromedp.CSS(`#edit-task button[type="submit"]`)))
	b.wait(t, 2*time.Second, "the conflict message and the current state in the editor",
		`(a => !a.hidden && a.textContent.includes('Not saved'))(document.querySelector('#editor-alert'))
		 && document.querySelector('#e-title').value === 'Write the README, theirs'`)
	b.screenshot(t, dir, "dashboard-conflict.png", 1440, 1000, false, false)
	if got := getTask(t, base, docs).Title; got != "Write the README, theirs" {
		t.Errorf("after the refused save the title is %q", got)
	}
	b.do(t, "close the editor", chromedp.Click(chromedp.CSS(`#edit-task [data-action="cancel"]`)))

	// (c) Cut off: the server stops (which ends the stream) and a new one starts on the
	// same address and database. Changes made meanwhile appear once each.
	seqBefore := eval[[]int64](t, b, `[...document.querySelectorAll('#activity [data-seq]')].map(li => Number(li.dataset.seq))`)
	stop()
	b.wait(t, 3*time.Second, "the page to see the stream drop", `document.querySelector('#conn').dataset.state !== 'live'`)
	store, err := sqlite.Open(context.Background(), db) // no server now: write to the file
	if err != nil {
		t.Fatal(err)
	}
	svc := tasks.NewService(store)
	down, err := svc.Create(context.Background(), tasks.Update{Title: tasks.Value("Written while the server was down")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Update(context.Background(), spare, 0, tasks.Update{Status: tasks.Value(tasks.StatusBlocked)}); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	base2, stop2 := serveAt(t, strings.TrimPrefix(base, "http://"), db)
	if base2 != base {
		t.Fatalf("restarted on %s, want %s", base2, base)
	}
	after := createTask(t, base, `{"title":"Made while the page reconnects","project":"core","labels":["stream"]}`)
	patchTask(t, base, live, `{"status":"done"}`)
	call(t, http.MethodDelete, fmt.Sprintf("%s/api/tasks/%d", base, made[0].ID), "", http.StatusNoContent, nil)
	state := eval[string](t, b, `document.querySelector('#conn').dataset.state`)
	t.Logf("connection state while the changes were made: %s", state)
	if state == "live" {
		t.Error("the page was live again before the changes: the test did not cut it off")
	}
	took = b.wait(t, 10*time.Second, "the page to reconnect and show the changes",
		`document.querySelector('#conn').dataset.state === 'live' && `+
			cardIn(down.ID, "todo")+` && `+cardIn(spare, "blocked")+` && `+cardIn(after, "todo")+` && `+
			cardIn(live, "done")+` && !`+card(made[0].ID))
	t.Logf("back live with every change after %s", took)

	// Once each: one card per stored task, and each event once in the activity feed.
	var all struct{ Tasks []struct{ ID int64 } }
	call(t, http.MethodGet, base+"/api/tasks?limit=500", "", http.StatusOK, &all)
	var want []int64
	for _, task := range all.Tasks {
		want = append(want, task.ID)
	}
	slices.Sort(want)
	got := eval[[]int64](t, b, `[...document.querySelectorAll('#board [data-task-id]')].map(c => Number(c.dataset.taskId)).sort((a, b) => a - b)`)
	if !slices.Equal(got, want) {
		t.Errorf("cards on the board %v, want the stored tasks %v, each once", got, want)
	}
	seqs := eval[[]int64](t, b, `[...document.querySelectorAll('#activity [data-seq]')].map(li => Number(li.dataset.seq))`)
	lastSeq := lastEventSeq(t, base)
	slices.Reverse(seqs) // the feed shows the newest first
	var wantSeqs []int64
	for s := seqs[0]; s <= lastSeq; s++ {
		wantSeqs = append(wantSeqs, s)
	}
	if !slices.Equal(seqs, wantSeqs) {
		t.Errorf("activity feed seqs %v (before the restart %v), want %v: a gap or a duplicate", seqs, seqBefore, wantSeqs)
	}

	// A burst of 1,000 changes, as fast as 8 clients make them: the page takes them in
	// batches, one redraw each, stays responsive and ends on every task's last version.
	b.do(t, "watch for long tasks", chromedp.Evaluate[chromedp.Void](`window.longTasks = [];
		new PerformanceObserver(l => window.longTasks.push(...l.getEntries().map(e => e.duration))).observe({type: 'longtask'})`))
	burstStart := time.Now()
	if err := burst(base, want, 1000, 8); err != nil {
		t.Fatal(err)
	}
	versions := map[string]int64{}
	var now struct{ Tasks []struct{ ID, Version int64 } }
	call(t, http.MethodGet, base+"/api/tasks?limit=500", "", http.StatusOK, &now)
	for _, task := range now.Tasks {
		versions[fmt.Sprint(task.ID)] = task.Version
	}
	vjson, _ := json.Marshal(versions)
	b.wait(t, 5*time.Second, "every card at its last version after the burst", fmt.Sprintf(
		"(m => Object.entries(m).every(([id, v]) => document.querySelectorAll(`#board [data-task-id=\"${id}\"]`).length === 1 && "+
			"document.querySelector(`#board [data-task-id=\"${id}\"]`).dataset.version === String(v)))(%s)", vjson))
	longest := eval[float64](t, b, `Math.max(0, ...window.longTasks)`)
	t.Logf("1000 changes made and shown in %s; the page's longest task meanwhile: %.0f ms", time.Since(burstStart), longest)
	if longest > 1000 {
		t.Errorf("the page was busy for %.0f ms at a stretch during the burst", longest)
	}

	// The debug panel renders /events/debug.
	b.do(t, "open the debug panel", chromedp.Click(chromedp.CSS(`#debug-panel summary`)))
	b.wait(t, 2*time.Second, "the debug panel's counters and its subscriber",
		`document.querySelector('#debug .stats') && document.querySelectorAll('#debug table.subs tbody tr').length === 1`)

	b.screenshot(t, dir, "dashboard-desktop.png", 1440, 1000, false, true)
	b.screenshot(t, dir, "dashboard-desktop-dark.png", 1440, 1000, true, true)
	b.screenshot(t, dir, "dashboard-phone.png", 390, 844, false, false)
	b.screenshot(t, dir, "dashboard-phone-full.png", 390, 844, true, true)

	// Filters narrow the board and the stream itself; the search text applies here.
	b.do(t, "filter on project core", chromedp.SendKeys(chromedp.CSS(`#f-project`), "core"))
	waitFor(t, base, "the page's stream to be filtered on project core", func(s broadcaster.Snapshot) bool {
		// The old stream may still count until the server next writes to it.
		return slices.ContainsFunc(s.Subscribers, func(sub broadcaster.SubscriberSnapshot) bool {
			return slices.Equal(sub.Filters.Projects, []string{"core"})
		})
	})
	other := createTask(t, base, `{"title":"Elsewhere","project":"site"}`)
	core := createTask(t, base, `{"title":"Also core","project":"core"}`)
	b.wait(t, time.Second, "the core task's card", cardIn(core, "todo"))
	coreCards := []int64{design, broker, spare, after, core}
	slices.Sort(coreCards)
	if got := eval[[]int64](t, b, `[...document.querySelectorAll('#board [data-task-id]')].map(c => Number(c.dataset.taskId)).sort((a, b) => a - b)`); !slices.Equal(got, coreCards) {
		t.Errorf("cards with project=core: %v, want %v (not %d)", got, coreCards, other)
	}
	b.do(t, "search", chromedp.SendKeys(chromedp.CSS(`#f-q`), "RECONNECTS"))
	b.wait(t, time.Second, "the search to leave one card shown", fmt.Sprintf(
		`(v => v.length === 1 && v[0].dataset.taskId === "%d")([...document.querySelectorAll('#board .card')].filter(c => !c.hidden))`, after))
	b.do(t, "clear the filters", chromedp.Click(chromedp.CSS(`#filters button[type="reset"]`)))
	b.wait(t, 2*time.Second, "every card back", fmt.Sprintf(
		`[...document.querySelectorAll('#board .card')].filter(c => !c.hidden).length === %d && %s`, len(want)+2, cardIn(other, "todo")))

	// A server on another database knows nothing of the page's last seq: the stream
	// starts with a reset, and the page reloads the whole board.
	stop2()
	fresh := filepath.Join(t.TempDir(), "fresh.db")
	serveAt(t, strings.TrimPrefix(base, "http://"), fresh)
	only := createTask(t, base, `{"title":"The only task of another database"}`)
	b.wait(t, 10*time.Second, "the board of the other database after the reset", fmt.Sprintf(
		`document.querySelector('#conn').dataset.state === 'live' && document.querySelectorAll('#board .card').length === 1 && %s`, cardIn(only, "todo")))

	// (e) No console errors and no uncaught exceptions, from the first load on.
	time.Sleep(100 * time.Millisecond)
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		t.Errorf("console: %s", p)
	}
}

// TestDashboardTokenDragDelete covers what TestDashboard does not: a server that asks
// for a token (the page's token dialog, asked again after a wrong one), moving a card
// by drag and drop, and deleting from the editor, with its confirmation declined, then
// accepted. The confirmation is the page's call to window.confirm, answered by the
// test: a native dialog would stop a headless page.
func TestDashboardTokenDragDelete(t *testing.T) {
	b := newBrowser(t)
	const secret = "dashboard-s3cret"
	base, _ := startServer(t, "--token", secret)
	authed := func(method, path, body string, want int) []byte {
		t.Helper()
		resp, b := send(t, method, base+path, secret, body, nil)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, want)
		}
		return b
	}
	var made struct{ ID int64 }
	if err := json.Unmarshal(authed(http.MethodPost, "/api/tasks", `{"title":"Drag me","project":"core"}`, http.StatusCreated), &made); err != nil {
		t.Fatal(err)
	}
	status := func() string {
		var task struct{ Status string }
		if err := json.Unmarshal(authed(http.MethodGet, fmt.Sprintf("/api/tasks/%d", made.ID), "", http.StatusOK), &task); err != nil {
			t.Fatal(err)
		}
		return task.Status
	}

	b.do(t, "open the dashboard", chromedp.Navigate(base))
	b.wait(t, 5*time.Second, "the token dialog", `document.querySelector('#token-dialog').open`)
	b.do(t, "count the times the page asks", chromedp.Evaluate[chromedp.Void](`window.asks = 0;
		(d => { const show = d.showModal.bind(d); d.showModal = () => { window.asks++; show(); }; })(document.querySelector('#token-dialog'))`))
	b.do(t, "give a wrong token",
		chromedp.SetValue(chromedp.CSS(`#t-token`), "not-the-token"),
		chromedp.Click(chromedp.CSS(`#token-form button[type="submit"]`)))
	b.wait(t, 5*time.Second, "the page to ask again", `window.asks === 1 && document.querySelector('#token-dialog').open`)
	b.do(t, "give the token",
		chromedp.SetValue(chromedp.CSS(`#t-token`), secret),
		chromedp.Click(chromedp.CSS(`#token-form button[type="submit"]`)))
	b.wait(t, 5*time.Second, "the board, live", `document.querySelector('#conn').dataset.state === 'live' && `+cardIn(made.ID, "todo"))
	if got := eval[string](t, b, `sessionStorage.getItem('taskhub.token')`); got != secret {
		t.Errorf("the tab keeps the token %q, want the one given", got)
	}
	// Live through ?access_token: a change made elsewhere shows.
	authed(http.MethodPatch, fmt.Sprintf("/api/tasks/%d", made.ID), `{"priority":"urgent"}`, http.StatusOK)
	b.wait(t, 2*time.Second, "the change made elsewhere", card(made.ID)+`.dataset.version === "2"`)

	// Drag the card onto the In progress column.
	b.do(t, "drag the card to in_progress", chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
		const card = %s, col = document.querySelector('#board [data-column="in_progress"]');
		const dt = new DataTransfer();
		const fire = (el, type) => el.dispatchEvent(new DragEvent(type, {bubbles: true, cancelable: true, dataTransfer: dt}));
		fire(card, 'dragstart');
		fire(col, 'dragover');
		fire(col, 'drop');
		fire(card, 'dragend');
	})()`, card(made.ID))))
	b.wait(t, 2*time.Second, "the card in in_progress", cardIn(made.ID, "in_progress"))
	if got := status(); got != "in_progress" {
		t.Errorf("after the drop the stored status is %q, want in_progress", got)
	}

	// Delete from the editor: declined, nothing happens; accepted, the task is gone.
	b.do(t, "open the editor and decline the delete",
		chromedp.Evaluate[chromedp.Void](`window.confirm = (m) => { window.asked = m; return false; }`),
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`[data-task-id="%d"] [data-action="edit"]`, made.ID))),
		chromedp.WaitVisible(chromedp.CSS(`#editor`)),
		chromedp.Click(chromedp.CSS(`#edit-task [data-action="delete"]`)))
	if asked := eval[string](t, b, `window.asked || ''`); !strings.Contains(asked, "Drag me") {
		t.Errorf("the confirmation asked %q, want it to name the task", asked)
	}
	if !eval[bool](t, b, `document.querySelector('#editor').open && !!`+card(made.ID)) {
		t.Fatal("a declined delete closed the editor or took the card away")
	}
	if got := status(); got != "in_progress" {
		t.Errorf("after a declined delete the task is %q", got)
	}
	b.do(t, "accept the delete",
		chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`),
		chromedp.Click(chromedp.CSS(`#edit-task [data-action="delete"]`)))
	b.wait(t, 2*time.Second, "the card gone and the editor closed", `!`+card(made.ID)+` && !document.querySelector('#editor').open`)
	authed(http.MethodGet, fmt.Sprintf("/api/tasks/%d", made.ID), "", http.StatusNotFound)

	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		t.Errorf("console: %s", p)
	}
}

// vocabularyOf is the part of GET /api/vocabulary that the board is built from.
type vocabularyOf struct {
	Statuses   []string `json:"statuses"`
	Priorities []string `json:"priorities"`
}

// boardTask is what the board's order depends on.
type boardTask struct {
	ID               int64
	Status, Priority string
}

// wantColumns is each status's card ids, ordered as the board must order them with
// the priorities (lowest first): the most pressing first, then the oldest.
func wantColumns(list []boardTask, priorities []string) map[string][]int64 {
	byStatus := map[string][]boardTask{}
	for _, t := range list {
		byStatus[t.Status] = append(byStatus[t.Status], t)
	}
	cols := map[string][]int64{}
	for s, ts := range byStatus {
		slices.SortFunc(ts, func(a, b boardTask) int {
			if d := slices.Index(priorities, b.Priority) - slices.Index(priorities, a.Priority); d != 0 {
				return d
			}
			return int(a.ID - b.ID)
		})
		for _, t := range ts {
			cols[s] = append(cols[s], t.ID)
		}
	}
	return cols
}

// boardShape is a JavaScript expression for what the board shows of the vocabulary:
// the columns in order with their headings, each column's card ids in order, and the
// options of the three selects.
const boardShape = `(() => {
	const values = (sel) => [...document.querySelectorAll(sel + ' option')].map((o) => o.value);
	const cols = [...document.querySelectorAll('#board [data-column]')];
	return {
		columns: cols.map((c) => c.dataset.column),
		headings: cols.map((c) => c.querySelector('.column-head span').textContent),
		cards: Object.fromEntries(cols.map((c) => [c.dataset.column, [...c.querySelectorAll('.card')].map((x) => Number(x.dataset.taskId))])),
		newPriority: values('#n-priority'),
		editPriority: values('#e-priority'),
		editStatus: values('#e-status'),
		priorityWords: [...document.querySelectorAll('#e-priority option')].map((o) => o.textContent),
	};
})()`

// boardShapeOf is the value of boardShape.
type boardShapeOf struct {
	Columns, Headings                     []string
	Cards                                 map[string][]int64
	NewPriority, EditPriority, EditStatus []string
	PriorityWords                         []string
}

// checkBoard fails the test unless the board shows the vocabulary v: its statuses as
// the columns and the status select, its priorities as the priority selects (the new
// task's after its "Default"), both in its order, and the cards of each column in the
// order of its priorities.
func checkBoard(t *testing.T, b *browser, v vocabularyOf, list []boardTask) boardShapeOf {
	t.Helper()
	got := eval[boardShapeOf](t, b, boardShape)
	if !slices.Equal(got.Columns, v.Statuses) {
		t.Errorf("columns %q, want the vocabulary's statuses %q", got.Columns, v.Statuses)
	}
	if !slices.Equal(got.EditStatus, v.Statuses) {
		t.Errorf("the editor's status options %q, want %q", got.EditStatus, v.Statuses)
	}
	if !slices.Equal(got.EditPriority, v.Priorities) {
		t.Errorf("the editor's priority options %q, want %q", got.EditPriority, v.Priorities)
	}
	if want := append([]string{""}, v.Priorities...); !slices.Equal(got.NewPriority, want) {
		t.Errorf("the new task's priority options %q, want %q", got.NewPriority, want)
	}
	for s, want := range wantColumns(list, v.Priorities) {
		if !slices.Equal(got.Cards[s], want) {
			t.Errorf("column %s has cards %v, want %v (priorities lowest first: %q)", s, got.Cards[s], want, v.Priorities)
		}
	}
	return got
}

// proxyVocabulary serves base through a proxy, and returns its URL: GET
// /api/vocabulary answers the server's vocabulary changed by edit; every request is
// first shown to seen, when not nil, which may hold it up.
func proxyVocabulary(t *testing.T, base string, edit func(v map[string]any), seen func(r *http.Request)) string {
	t.Helper()
	target, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	forward := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if seen != nil {
			seen(r)
		}
		if r.URL.Path != "/api/vocabulary" {
			forward.ServeHTTP(w, r)
			return
		}
		var v map[string]any
		resp, err := http.Get(base + "/api/vocabulary")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&v)
			resp.Body.Close()
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		edit(v)
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(v); err != nil {
			t.Errorf("proxy: answer the vocabulary: %v", err)
		}
	}))
	t.Cleanup(func() {
		proxy.CloseClientConnections() // the page's stream, which would hold Close up
		proxy.Close()
	})
	return proxy.URL
}

// TestDashboardVocabulary checks that the board is built from GET /api/vocabulary, not
// from a copy in the page: first against the server's own, then through a proxy that
// answers another one (statuses and priorities reordered, and one of each that the
// page has no words for), which the board must follow too.
func TestDashboardVocabulary(t *testing.T) {
	b := newBrowser(t)
	base, _ := startServer(t)

	// Made in an order that is not the board's: ids alone would sort them otherwise.
	var list []boardTask
	for i, tc := range []struct{ priority, status string }{
		{"low", "todo"}, {"urgent", "todo"}, {"medium", "todo"}, {"high", "todo"}, {"medium", "todo"},
		{"high", "review"}, {"low", "review"}, {"urgent", "review"},
	} {
		id := createTask(t, base, fmt.Sprintf(`{"title":"task %d","priority":%q}`, i, tc.priority))
		if tc.status != "todo" {
			patchTask(t, base, id, fmt.Sprintf(`{"status":%q}`, tc.status))
		}
		list = append(list, boardTask{id, tc.status, tc.priority})
	}
	var vocab vocabularyOf
	call(t, http.MethodGet, base+"/api/vocabulary", "", http.StatusOK, &vocab)

	b.do(t, "open the dashboard", chromedp.Navigate(base))
	b.wait(t, 5*time.Second, "the board, live", fmt.Sprintf(
		`document.querySelector('#conn').dataset.state === 'live' && document.querySelectorAll('#board .card').length === %d`, len(list)))
	checkBoard(t, b, vocab, list)

	// A live change lands in its place: the oldest low task of todo becomes urgent.
	patchTask(t, base, list[0].ID, `{"priority":"urgent"}`)
	list[0].Priority = "urgent"
	b.wait(t, 2*time.Second, "the card to move up", card(list[0].ID)+`.classList.contains('prio-urgent')`)
	checkBoard(t, b, vocab, list)

	// A task made in the form without choosing a priority gets the server's default.
	b.do(t, "add a task with the default priority",
		chromedp.SendKeys(chromedp.CSS(`form#new-task input[name="title"]`), "Priority left to the server"),
		chromedp.Click(chromedp.CSS(`form#new-task button[type="submit"]`)))
	b.wait(t, 2*time.Second, "the form's task on the board", fmt.Sprintf(
		`document.querySelectorAll('#board .card').length === %d`, len(list)+1))
	var made struct {
		Tasks []struct {
			ID       int64
			Priority string
		}
	}
	call(t, http.MethodGet, base+"/api/tasks?q="+url.QueryEscape("left to the server"), "", http.StatusOK, &made)
	if len(made.Tasks) != 1 || made.Tasks[0].Priority != "medium" {
		t.Fatalf("tasks made from the form with the default priority: %+v, want one of priority medium", made.Tasks)
	}
	list = append(list, boardTask{made.Tasks[0].ID, "todo", "medium"})

	// Another vocabulary: the board follows it, and shows what it has no words for as
	// it is.
	reversed := func(s []string) []string {
		r := slices.Clone(s)
		slices.Reverse(r)
		return r
	}
	other := vocabularyOf{
		Statuses:   append([]string{"triage"}, reversed(vocab.Statuses)...),
		Priorities: append([]string{"someday"}, reversed(vocab.Priorities)...),
	}
	proxy := proxyVocabulary(t, base, func(v map[string]any) {
		v["statuses"], v["priorities"] = other.Statuses, other.Priorities
	}, nil)
	b.do(t, "open the dashboard through the proxy", chromedp.Navigate(proxy))
	b.wait(t, 5*time.Second, "the board through the proxy, live", fmt.Sprintf(
		`document.querySelector('#conn').dataset.state === 'live' && document.querySelectorAll('#board .card').length === %d`, len(list)))
	got := checkBoard(t, b, other, list)
	headings := map[string]string{}
	for i, c := range got.Columns {
		headings[c] = got.Headings[i]
	}
	if h := headings["triage"]; h != "triage" {
		t.Errorf("the heading of a status the page has no words for is %q, want its value", h)
	}
	if h := headings["todo"]; h != "To do" {
		t.Errorf("the heading of todo is %q, want the page's words for it", h)
	}
	if !slices.Contains(got.PriorityWords, "someday") {
		t.Errorf("the priority options say %q, want the value of the one the page has no words for", got.PriorityWords)
	}
	b.screenshot(t, artifactDir(t), "dashboard-other-vocabulary.png", 1440, 1000, false, false)

	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		t.Errorf("console: %s", p)
	}
}

// noProblems fails the test for each console error and uncaught exception of the page.
func (b *browser) noProblems(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		t.Errorf("console: %s", p)
	}
}

// taskNote is a task's note as the API answers it.
type taskNote struct {
	ID     int64  `json:"id"`
	TaskID int64  `json:"task_id"`
	Author string `json:"author"`
	Text   string `json:"text"`
}

// postNote adds a note with text to the task id through REST.
func postNote(t *testing.T, base string, id int64, text string) taskNote {
	t.Helper()
	body, err := json.Marshal(map[string]string{"text": text})
	if err != nil {
		t.Fatal(err)
	}
	var n taskNote
	call(t, http.MethodPost, fmt.Sprintf("%s/api/tasks/%d/notes", base, id), string(body), http.StatusCreated, &n)
	return n
}

// threadOf returns the whole thread of the task id, oldest first.
func threadOf(t *testing.T, base string, id int64) []taskNote {
	t.Helper()
	var page struct{ Notes []taskNote }
	call(t, http.MethodGet, fmt.Sprintf("%s/api/tasks/%d/notes?limit=500", base, id), "", http.StatusOK, &page)
	return page.Notes
}

// shownNotes is a JavaScript expression for the ids of the notes the editor lists, in
// their order.
const shownNotes = `[...document.querySelectorAll('#notes-list .note')].map((li) => Number(li.dataset.noteId))`

// TestDashboardNotes opens a task with more notes than a page in the editor: its
// thread shows oldest first, a page at a time; a note added elsewhere while pages
// remain unread waits for them (it comes after them), one added once the thread is
// whole shows at once, and one added from the editor's box is stored and shown once,
// though both the POST's answer and its event bring it.
func TestDashboardNotes(t *testing.T) {
	b := newBrowser(t)
	dir := artifactDir(t)
	base, _ := startServer(t)
	id := createTask(t, base, `{"title":"Find why the CI run is flaky","assignee":"claude-code","project":"core","labels":["ci"]}`)
	other := createTask(t, base, `{"title":"Another task","project":"core"}`)
	var want []int64
	for i := range 53 { // more than the editor's page of 50
		want = append(want, postNote(t, base, id, fmt.Sprintf("Note %d: run %d of the suite failed on the fixture.", i+1, i+1)).ID)
	}
	postNote(t, base, other, "A note of another task")
	ids := func() []int64 { return eval[[]int64](t, b, shownNotes) }

	b.do(t, "open the dashboard", chromedp.Navigate(base))
	b.wait(t, 5*time.Second, "the board, live", `document.querySelector('#conn').dataset.state === 'live' && !!`+card(id))
	b.do(t, "open the editor",
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`[data-task-id="%d"] [data-action="edit"]`, id))),
		chromedp.WaitVisible(chromedp.CSS(`#editor`)))
	b.wait(t, 2*time.Second, "the thread's first page", `document.querySelectorAll('#notes-list .note').length === 50 && !document.querySelector('#notes-more').hidden`)
	if got := ids(); !slices.Equal(got, want[:50]) {
		t.Errorf("the first page shows notes %v, want the oldest 50 in order %v", got, want[:50])
	}
	if got := eval[string](t, b, `document.querySelector('#notes-list .note .note-text').textContent`); got != "Note 1: run 1 of the suite failed on the fixture." {
		t.Errorf("the first note says %q", got)
	}

	// Added elsewhere while a page remains: it waits, and the button says so.
	late := postNote(t, base, id, "Added while a page remains unread").ID
	b.wait(t, 2*time.Second, "the button to count the new note", `document.querySelector('#notes-more').textContent.includes('1 new')`)
	if got := ids(); !slices.Equal(got, want[:50]) {
		t.Errorf("with a page unread, the thread shows %v, want the first page only", got)
	}
	b.do(t, "show more notes", chromedp.Click(chromedp.CSS(`#notes-more`)))
	want = append(want, late)
	wantJSON := func() string {
		j, _ := json.Marshal(want)
		return string(j)
	}
	b.wait(t, 2*time.Second, "the whole thread, in order", fmt.Sprintf(
		`JSON.stringify(%s) === %q && document.querySelector('#notes-more').hidden && document.querySelector('#notes-count').textContent === "%d"`,
		shownNotes, wantJSON(), len(want)))

	// Once the thread is whole, a note added elsewhere shows at once, at its end.
	want = append(want, postNote(t, base, id, "Added elsewhere, shown live").ID)
	b.wait(t, 2*time.Second, "the live note at the end", fmt.Sprintf(`JSON.stringify(%s) === %q`, shownNotes, wantJSON()))

	// From the editor's box: stored, with its author, and shown once when both the
	// answer and the event have come.
	const text = "Found it: the fixture needs TZ=UTC.\nFixing it in the CI config."
	b.do(t, "add a note from the editor",
		chromedp.SendKeys(chromedp.CSS(`#note-text`), text),
		chromedp.Click(chromedp.CSS(`#note-form button[type="submit"]`)))
	var stored []taskNote
	deadline := time.Now().Add(2 * time.Second)
	for len(stored) <= len(want) && time.Now().Before(deadline) {
		stored = threadOf(t, base, id)
		if len(stored) <= len(want) {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if len(stored) != len(want)+1 {
		t.Fatalf("the task has %d notes after adding one from the editor, want %d", len(stored), len(want)+1)
	}
	mine := stored[len(stored)-1]
	if mine.Text != text || mine.Author != "anonymous" {
		t.Errorf("the note added from the editor is %+v, want text %q by anonymous", mine, text)
	}
	want = append(want, mine.ID)
	seq := lastEventSeq(t, base)
	b.wait(t, 2*time.Second, "the note's event in the activity feed", fmt.Sprintf(`!!document.querySelector('#activity [data-seq="%d"]')`, seq))
	if got := ids(); !slices.Equal(got, want) {
		t.Errorf("after adding a note from the editor the thread shows %v, want %v: each once, in order", got, want)
	}
	if got := eval[string](t, b, `document.querySelector('#notes-list .note:last-child .note-text').textContent`); got != text {
		t.Errorf("the last note shown says %q, want %q", got, text)
	}
	if got := eval[string](t, b, `document.querySelector('#note-text').value`); got != "" {
		t.Errorf("the note box keeps %q after the note was added", got)
	}
	if got := eval[string](t, b, fmt.Sprintf(`document.querySelector('#activity [data-seq="%d"] .changes').textContent`, seq)); !strings.HasPrefix(got, "Found it") {
		t.Errorf("the activity feed shows the note as %q, want its text", got)
	}

	// An empty note is not sent.
	b.do(t, "add an empty note",
		chromedp.SetValue(chromedp.CSS(`#note-text`), "   "),
		chromedp.Click(chromedp.CSS(`#note-form button[type="submit"]`)))
	b.wait(t, time.Second, "the empty note refused", `(s => !s.hidden && s.textContent.includes('needs some text'))(document.querySelector('#notes-status'))`)
	if n := len(threadOf(t, base, id)); n != len(want) {
		t.Errorf("after an empty note the task has %d notes, want %d", n, len(want))
	}
	b.do(t, "clear the note box", chromedp.Evaluate[chromedp.Void](`document.querySelector('#note-text').value = ''`))

	b.do(t, "scroll the thread to its end", chromedp.Evaluate[chromedp.Void](`(l => { l.scrollTop = l.scrollHeight; })(document.querySelector('#notes-list'))`))
	b.screenshot(t, dir, "dashboard-notes.png", 1440, 1000, false, false)
	b.screenshot(t, dir, "dashboard-notes-dark.png", 1440, 1000, true, false)
	b.screenshot(t, dir, "dashboard-notes-phone.png", 390, 844, false, false)

	// Another task's thread: its own note only.
	b.do(t, "open the other task",
		chromedp.Click(chromedp.CSS(`#edit-task [data-action="cancel"]`)),
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`[data-task-id="%d"] [data-action="edit"]`, other))),
		chromedp.WaitVisible(chromedp.CSS(`#editor`)))
	b.wait(t, 2*time.Second, "the other task's thread", `document.querySelectorAll('#notes-list .note').length === 1 && document.querySelector('#notes-more').hidden &&
		document.querySelector('#notes-list .note-text').textContent === 'A note of another task'`)
	b.noProblems(t)
}

// loggedEvent is what the chart's tests read of an event of the log.
type loggedEvent struct {
	Seq   int64  `json:"seq"`
	Type  string `json:"type"`
	Actor string `json:"actor"`
	Time  string `json:"time"`
	Task  *struct {
		Project string `json:"project"`
	} `json:"task"`
	Changes map[string][2]json.RawMessage `json:"changes"`
}

// eventLog returns the whole event log (up to 1,000 events).
func eventLog(t *testing.T, base string) []loggedEvent {
	t.Helper()
	var page struct{ Events []loggedEvent }
	call(t, http.MethodGet, base+"/api/events?after=0&limit=1000", "", http.StatusOK, &page)
	return page.Events
}

// countByType counts events by type.
func countByType(events []loggedEvent) map[string]int {
	n := map[string]int{}
	for _, e := range events {
		n[e.Type]++
	}
	return n
}

// chartCounts is a JavaScript expression for the chart's bars summed by type.
const chartCounts = `[...document.querySelectorAll('#chart rect.bar')].reduce((m, r) => (m[r.dataset.type] = (m[r.dataset.type] || 0) + Number(r.dataset.count), m), {})`

// waitChart waits until the chart's bars count want by type.
func waitChart(t *testing.T, b *browser, what string, want map[string]int) {
	t.Helper()
	j, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	b.wait(t, 3*time.Second, what, fmt.Sprintf(
		`(got => { const want = %s; return Object.keys(want).length === Object.keys(got).length && Object.entries(want).every(([k, v]) => got[k] === v); })(%s)`,
		j, chartCounts))
}

// TestDashboardChart checks the chart of events per minute: filled from the log when
// the page loads, then counting the stream, each event once and by its type; under a
// filter, only the events the stream sends; and, through a proxy whose vocabulary
// makes the page's pages small, that it reads no more than its bound of pages and says
// how far back it read.
func TestDashboardChart(t *testing.T) {
	b := newBrowser(t)
	dir := artifactDir(t)
	base, _ := startServer(t)
	core := createTask(t, base, `{"title":"Chart the events","project":"core"}`)
	moved := createTask(t, base, `{"title":"Moves to site","project":"core"}`)
	site := createTask(t, base, `{"title":"Site work","project":"site"}`)
	patchTask(t, base, core, `{"status":"in_progress"}`)
	patchTask(t, base, moved, `{"project":"site"}`)
	postNote(t, base, core, "Started on the chart")
	call(t, http.MethodDelete, fmt.Sprintf("%s/api/tasks/%d", base, site), "", http.StatusNoContent, nil)

	b.do(t, "open the dashboard", chromedp.Navigate(base))
	b.wait(t, 5*time.Second, "the board, live", `document.querySelector('#conn').dataset.state === 'live'`)
	waitChart(t, b, "the chart filled from the log", countByType(eventLog(t, base)))

	// Live: counted from the stream, once each.
	patchTask(t, base, core, `{"status":"review"}`)
	createTask(t, base, `{"title":"Made while the chart looks","project":"core"}`)
	postNote(t, base, core, "Ready for review")
	postNote(t, base, moved, "Moved on")
	waitChart(t, b, "the chart counting the stream", countByType(eventLog(t, base)))
	if n := eval[int](t, b, `document.querySelectorAll('#chart g.minute').length`); n < 1 || n > 2 {
		t.Errorf("the chart has bars in %d minutes, want the one or two this test ran in", n)
	}
	total := eval[int](t, b, `[...document.querySelectorAll('#chart g.minute')].reduce((n, g) => n + Number(g.dataset.total), 0)`)
	if want := len(eventLog(t, base)); total != want {
		t.Errorf("the chart's minutes add up to %d events, want %d", total, want)
	}
	if h := eval[float64](t, b, `Math.max(...[...document.querySelectorAll('#chart rect.bar')].map((r) => r.getBoundingClientRect().height))`); h < 10 {
		t.Errorf("the chart's tallest bar is %.1f px high: not drawn", h)
	}
	b.do(t, "scroll to the chart", chromedp.Evaluate[chromedp.Void](`document.querySelector('#chart-panel').scrollIntoView()`))
	b.screenshot(t, dir, "dashboard-chart.png", 1440, 1000, false, true)
	b.screenshot(t, dir, "dashboard-chart-dark.png", 1440, 1000, true, true)

	// Under a filter, the stream sends the events of that project's tasks, also those
	// that moved a task out of it, and the fill counts the same.
	b.do(t, "open the board of project core", chromedp.Navigate(base+"/?project=core"))
	coreEvents := func() map[string]int {
		var keep []loggedEvent
		for _, e := range eventLog(t, base) {
			was := ""
			if c, ok := e.Changes["project"]; ok {
				_ = json.Unmarshal(c[0], &was)
			}
			if e.Task != nil && (e.Task.Project == "core" || was == "core") {
				keep = append(keep, e)
			}
		}
		return countByType(keep)
	}
	waitChart(t, b, "the chart of project core", coreEvents())
	createTask(t, base, `{"title":"Not core","project":"site"}`)
	createTask(t, base, `{"title":"Core again","project":"core"}`)
	waitChart(t, b, "the chart of project core, live", coreEvents())

	// The fill races the stream: changes made after the page's snapshot, while its
	// first read of the log is held up, come both in the fill's pages and the stream.
	// Each counts once.
	held, release := make(chan struct{}), make(chan struct{})
	var hold sync.Once
	racing := proxyVocabulary(t, base, func(map[string]any) {}, func(r *http.Request) {
		if r.URL.Path == "/api/events" && r.URL.Query().Get("after") == "0" {
			hold.Do(func() {
				close(held)
				select {
				case <-release:
				case <-time.After(10 * time.Second):
				}
			})
		}
	})
	b.do(t, "open the dashboard with its fill held up", chromedp.Navigate(racing))
	select {
	case <-held:
	case <-time.After(5 * time.Second):
		t.Fatal("the page did not read the log for its chart")
	}
	postNote(t, base, core, "Made while the chart's fill waits")
	patchTask(t, base, core, `{"priority":"high"}`)
	b.wait(t, 2*time.Second, "the stream's events in the activity feed", fmt.Sprintf(`!!document.querySelector('#activity [data-seq="%d"]')`, lastEventSeq(t, base)))
	close(release)
	waitChart(t, b, "the chart after the held fill, each event once", countByType(eventLog(t, base)))

	// Bounded: through a proxy that says the server's largest page is 5 events, the
	// page reads at most its 10 pages back from the end, 50 events, and says so.
	for i := range 60 {
		patchTask(t, base, core, fmt.Sprintf(`{"description":"change %d"}`, i))
	}
	var (
		mu    sync.Mutex
		reads []string
	)
	bounded := proxyVocabulary(t, base, func(v map[string]any) {
		v["limits"].(map[string]any)["events_limit"] = 5
	}, func(r *http.Request) {
		if r.URL.Path == "/api/events" {
			mu.Lock()
			reads = append(reads, r.URL.RawQuery)
			mu.Unlock()
		}
	})
	all := eventLog(t, base)
	b.do(t, "open the dashboard through the proxy", chromedp.Navigate(bounded))
	waitChart(t, b, "the chart of the last 50 events", countByType(all[len(all)-50:]))
	b.wait(t, time.Second, "the chart to say how far back it read", `document.querySelector('#chart-box').textContent.includes('read back to')`)
	mu.Lock()
	got := slices.Clone(reads)
	mu.Unlock()
	if len(got) > 12 { // where the log ends, where it starts, 10 pages
		t.Errorf("the page read /api/events %d times: %q, want at most 12", len(got), got)
	}
	for _, q := range got {
		v, err := url.ParseQuery(q)
		if err != nil {
			t.Fatal(err)
		}
		if l := v.Get("limit"); l != "1" && l != "5" {
			t.Errorf("the page read /api/events?%s: a page over the vocabulary's limit of 5", q)
		}
	}
	b.noProblems(t)
}

// claimedTask is what the claims' test reads of a task.
type claimedTask struct {
	ID              int64   `json:"id"`
	Status          string  `json:"status"`
	Assignee        string  `json:"assignee"`
	Version         int64   `json:"version"`
	LeaseExpiresAt  *string `json:"lease_expires_at"`
	Progress        int     `json:"progress"`
	ProgressMessage string  `json:"progress_message"`
}

// cardClaim is a JavaScript expression for what a task's card shows of its claim.
func cardClaim(id int64) string {
	return fmt.Sprintf(`(c => c && {
		version: Number(c.dataset.version),
		status: c.dataset.status,
		holder: c.querySelector('.assignee.holder .name')?.textContent ?? '',
		expires: c.querySelector('.lease')?.dataset.expires ?? '',
		left: c.querySelector('.lease .lease-left')?.textContent ?? '',
		progress: Number(c.querySelector('progress')?.value ?? 0),
		progressTitle: c.querySelector('progress')?.title ?? '',
		progressLabel: c.querySelector('.progress-label')?.textContent ?? '',
	})(%s)`, card(id))
}

// cardClaimOf is the value of cardClaim.
type cardClaimOf struct {
	Version                      int64
	Status, Holder, Expires      string
	Left                         string
	Progress                     float64
	ProgressTitle, ProgressLabel string
}

// leaseShownRight is a JavaScript condition: the lease on the task's card says the
// time left until its data-expires, to within a second and a half, as m:ss.
func leaseShownRight(id int64) string {
	return fmt.Sprintf(`(el => {
		if (!el) return false;
		const [m, s] = el.querySelector('.lease-left').textContent.split(':').map(Number);
		const left = (Date.parse(el.dataset.expires) - Date.now()) / 1000;
		return Math.abs(m * 60 + s - left) <= 1.5;
	})(%s.querySelector('.lease'))`, card(id))
}

// agentsShown is a JavaScript expression for the Agents panel: each actor with its
// tasks' ids, their leases and the time of its last activity.
const agentsShown = `[...document.querySelectorAll('#agents .agent')].map((a) => ({
	actor: a.dataset.actor,
	tasks: [...a.querySelectorAll('.agent-task')].map((t) => Number(t.dataset.taskId)),
	leases: [...a.querySelectorAll('.agent-task .lease')].map((l) => l.dataset.expires),
	since: a.querySelector('.ago')?.dataset.since ?? '',
}))`

// agentShown is one entry of agentsShown.
type agentShown struct {
	Actor  string
	Tasks  []int64
	Leases []string
	Since  string
}

// giveToken answers the page's token dialog with secret.
func (b *browser) giveToken(t *testing.T, secret string) {
	t.Helper()
	b.wait(t, 5*time.Second, "the token dialog", `document.querySelector('#token-dialog').open`)
	b.do(t, "give the token",
		chromedp.SetValue(chromedp.CSS(`#t-token`), secret),
		chromedp.Click(chromedp.CSS(`#token-form button[type="submit"]`)))
}

// TestDashboardClaims has two agents claim tasks through REST and checks what the
// page shows: on the card the holder, the lease counting down and the progress bar
// with its message; a heartbeat, which leaves the task's version as it is, moving the
// lease shown; the Agents panel listing each holder with its tasks, their leases and
// its last activity; a release taking the claim off; and a lease that runs out taking
// the task back to todo, unassigned.
func TestDashboardClaims(t *testing.T) {
	b := newBrowser(t)
	dir := artifactDir(t)
	path := filepath.Join(t.TempDir(), "tokens.json")
	boss := tokenEntry{"boss", "boss-secret", []string{"read", "write", "admin"}}
	claude := tokenEntry{"claude-code", "claude-secret", []string{"read", "write"}}
	codex := tokenEntry{"codex", "codex-secret", []string{"read", "write"}}
	writeTokens(t, path, boss, claude, codex)
	// Claims that ask for no lease get 2 s: the last one here runs out.
	base, _ := startServer(t, "--tokens-file", path, "--claim-lease", "2s")
	read := func(tok tokenEntry, method, path, body string, want int, out any) {
		t.Helper()
		resp, b := send(t, method, base+path, tok.secret, body, nil)
		if resp.StatusCode != want {
			t.Fatalf("%s %s as %s: %d %s, want %d", method, path, tok.name, resp.StatusCode, b, want)
		}
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	as := func(tok tokenEntry, method, path, body string, want int) (task claimedTask) {
		t.Helper()
		read(tok, method, path, body, want, &task)
		return task
	}
	var log struct {
		Events  []loggedEvent
		LastSeq int64 `json:"last_seq"`
	}
	readLog := func() {
		t.Helper()
		read(boss, http.MethodGet, "/api/events?after=0&limit=1000", "", http.StatusOK, &log)
	}
	sched := as(boss, http.MethodPost, "/api/tasks", `{"title":"Write the lease scheduler","priority":"high","project":"core","labels":["leases"]}`, http.StatusCreated)
	readme := as(boss, http.MethodPost, "/api/tasks", `{"title":"Review the README","project":"docs"}`, http.StatusCreated)
	spare := as(boss, http.MethodPost, "/api/tasks", `{"title":"Nobody's yet","project":"core"}`, http.StatusCreated)
	as(claude, http.MethodPost, fmt.Sprintf("/api/tasks/%d/claim", sched.ID), `{"lease_seconds":600}`, http.StatusOK)
	as(codex, http.MethodPost, fmt.Sprintf("/api/tasks/%d/claim", readme.ID), `{"lease_seconds":300}`, http.StatusOK)
	sched = as(claude, http.MethodPatch, fmt.Sprintf("/api/tasks/%d", sched.ID), `{"progress":40,"progress_message":"Running the store tests"}`, http.StatusOK)
	if sched.LeaseExpiresAt == nil || sched.Progress != 40 {
		t.Fatalf("the claimed task after its progress report: %+v", sched)
	}

	b.do(t, "open the dashboard", chromedp.Navigate(base))
	b.giveToken(t, boss.secret)
	b.wait(t, 5*time.Second, "the board, live", `document.querySelector('#conn').dataset.state === 'live' && document.querySelectorAll('#board .card').length === 3`)

	// The card: holder, lease, progress.
	got := eval[cardClaimOf](t, b, cardClaim(sched.ID))
	if got.Holder != "claude-code" || got.Expires != *sched.LeaseExpiresAt || got.Status != "in_progress" {
		t.Errorf("the claimed card shows holder %q, lease until %q, in %s; want claude-code, %q, in_progress", got.Holder, got.Expires, got.Status, *sched.LeaseExpiresAt)
	}
	if got.Progress != 40 || got.ProgressTitle != "Running the store tests" || !strings.Contains(got.ProgressLabel, "Running the store tests") || !strings.Contains(got.ProgressLabel, "40%") {
		t.Errorf("the claimed card's progress: %v titled %q, labelled %q; want 40, with its message", got.Progress, got.ProgressTitle, got.ProgressLabel)
	}
	if !eval[bool](t, b, leaseShownRight(sched.ID)) {
		t.Errorf("the lease shows %q left, which is not the time until %s", got.Left, got.Expires)
	}
	if free := eval[cardClaimOf](t, b, cardClaim(spare.ID)); free.Holder != "" || free.Expires != "" || free.Progress != 0 || free.ProgressLabel != "" {
		t.Errorf("the unclaimed card shows a claim: %+v", free)
	}
	// It counts down by itself.
	b.wait(t, 3*time.Second, "the lease to count down", fmt.Sprintf(`%s.querySelector('.lease-left').textContent !== %q`, card(sched.ID), got.Left))
	if !eval[bool](t, b, leaseShownRight(sched.ID)) {
		t.Error("the lease's countdown went wrong")
	}

	// A heartbeat renews the lease but is no new version: the card shows the new lease.
	beat := as(claude, http.MethodPost, fmt.Sprintf("/api/tasks/%d/heartbeat", sched.ID), "", http.StatusOK)
	if beat.Version != sched.Version || beat.LeaseExpiresAt == nil || *beat.LeaseExpiresAt <= *sched.LeaseExpiresAt {
		t.Fatalf("the heartbeat's answer %+v: want version %d and a later lease than %s", beat, sched.Version, *sched.LeaseExpiresAt)
	}
	b.wait(t, 2*time.Second, "the renewed lease on the card", fmt.Sprintf(`(c => c.expires === %q && c.version === %d)(%s)`, *beat.LeaseExpiresAt, beat.Version, cardClaim(sched.ID)))
	if n := eval[int](t, b, fmt.Sprintf(`document.querySelectorAll('#board [data-task-id="%d"]').length`, sched.ID)); n != 1 {
		t.Errorf("%d cards for the renewed task, want 1", n)
	}
	if !eval[bool](t, b, leaseShownRight(sched.ID)) {
		t.Error("the renewed lease shows the wrong time left")
	}

	// The Agents panel: each holder, its tasks and leases, its last activity.
	readLog()
	lastBy := func(actor string) string {
		last := ""
		for _, e := range log.Events {
			if e.Actor == actor && e.Time > last {
				last = e.Time
			}
		}
		return last
	}
	readme = as(codex, http.MethodGet, fmt.Sprintf("/api/tasks/%d", readme.ID), "", http.StatusOK)
	wantAgents := []agentShown{
		{"claude-code", []int64{sched.ID}, []string{*beat.LeaseExpiresAt}, lastBy("claude-code")},
		{"codex", []int64{readme.ID}, []string{*readme.LeaseExpiresAt}, lastBy("codex")},
	}
	agents := eval[[]agentShown](t, b, agentsShown)
	if fmt.Sprint(agents) != fmt.Sprint(wantAgents) {
		t.Errorf("the Agents panel shows %+v, want %+v", agents, wantAgents)
	}

	// Progress reported again shows at once.
	as(claude, http.MethodPatch, fmt.Sprintf("/api/tasks/%d", sched.ID), `{"progress":80,"progress_message":"One test left"}`, http.StatusOK)
	b.wait(t, 2*time.Second, "the new progress on the card", fmt.Sprintf(`(c => c.progress === 80 && c.progressTitle === 'One test left')(%s)`, cardClaim(sched.ID)))

	b.screenshot(t, dir, "dashboard-claims.png", 1440, 1000, false, true)
	b.screenshot(t, dir, "dashboard-claims-dark.png", 1440, 1000, true, true)
	b.screenshot(t, dir, "dashboard-claims-phone.png", 390, 844, false, false)
	b.screenshot(t, dir, "dashboard-claims-phone-full.png", 390, 844, true, true)

	// A release takes the claim off the card and the holder off the panel.
	as(codex, http.MethodPost, fmt.Sprintf("/api/tasks/%d/release", readme.ID), "", http.StatusOK)
	b.wait(t, 2*time.Second, "the released task back in todo, without a claim", fmt.Sprintf(
		`(c => c.status === 'todo' && c.holder === '' && c.expires === '')(%s) && JSON.stringify(%s.map((a) => a.actor)) === '["claude-code"]'`,
		cardClaim(readme.ID), agentsShown))

	// A lease that runs out: the task goes back to todo, unassigned, by the system.
	short := as(codex, http.MethodPost, fmt.Sprintf("/api/tasks/%d/claim", spare.ID), "", http.StatusOK)
	if short.LeaseExpiresAt == nil {
		t.Fatalf("the claim without lease_seconds has no lease: %+v", short)
	}
	b.wait(t, 2*time.Second, "the short claim on the card and the panel", fmt.Sprintf(
		`(c => c.holder === 'codex' && c.expires === %q)(%s) && %s.some((a) => a.actor === 'codex')`, *short.LeaseExpiresAt, cardClaim(spare.ID), agentsShown))
	b.wait(t, 5*time.Second, "the expired task back in todo, unassigned", fmt.Sprintf(
		`(c => c.status === 'todo' && c.holder === '' && c.expires === '' && !document.querySelector('#board [data-task-id="%d"] .assignee'))(%s) && JSON.stringify(%s.map((a) => a.actor)) === '["claude-code"]'`,
		spare.ID, cardClaim(spare.ID), agentsShown))
	readLog()
	b.wait(t, 2*time.Second, "the expiry in the activity feed", fmt.Sprintf(
		`(li => !!li && li.querySelector('.changes').textContent.startsWith('lease expired') && li.querySelector('.who').textContent.startsWith('system'))(document.querySelector('#activity [data-seq="%d"]'))`, log.LastSeq))
	b.noProblems(t)
}

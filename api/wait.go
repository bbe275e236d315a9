package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"taskhub/broadcaster"
	"taskhub/broadcaster/tasklog"
	"taskhub/tasks"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// waitParam reads the long poll's wait: a duration from 0 (no wait, the default) to
// broadcaster.MaxWait.
func waitParam(q url.Values) (time.Duration, error) {
	if !q.Has("wait") {
		return 0, nil
	}
	d, err := time.ParseDuration(q.Get("wait"))
	if err != nil || d < 0 || d > broadcaster.MaxWait {
		return 0, invalid("wait", fmt.Sprintf("wait must be a duration from 0 to %s, such as 30s, got %q", broadcaster.MaxWait, q.Get("wait")))
	}
	return d, nil
}

// poll answers GET /api/events: the events after after that f selects, waiting up
// to wait for a first one (a long poll). The caller counts against the bounds of
// waits by its token's name (Anonymous without tokens). A client that went away gets
// no answer, and nothing is logged.
func (h *handlers) poll(c echo.Context, after int64, f broadcaster.Filter, limit int, wait time.Duration) error {
	if wait > 0 && h.waits == nil {
		return invalid("wait", "this server cannot wait for events; poll without wait")
	}
	ctx := withActor(c)
	events, last, err := tasklog.Wait(ctx, h.svc, h.waits, tasklog.WaitRequest{
		Owner: tasks.ActorFrom(ctx).Name, After: after, Filter: f, Limit: limit, Timeout: wait,
	})
	switch {
	case ctx.Err() != nil:
		return nil
	case errors.Is(err, broadcaster.ErrTooManyWaits):
		c.Response().Header().Set("Retry-After", "1")
		return &Error{Status: http.StatusTooManyRequests, Code: CodeRateLimited, Message: err.Error()}
	case err != nil:
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"events": events, "last_seq": last})
}

// WatchWaits registers the gauge of the calls waiting for events, which waiting
// reads at every scrape.
func (m *Metrics) WatchWaits(waiting func() int) {
	m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "taskhub_waiting_calls",
		Help: "Calls waiting for an event now: long polls of GET /api/events and MCP wait_for_events.",
	}, func() float64 { return float64(waiting()) }))
}

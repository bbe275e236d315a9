package postgres

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// channel is the NOTIFY channel of commits; a notification's payload is the last seq
// its commit gave.
const channel = "taskhub_events"

// Reconnecting the listener: from firstRelisten, doubling to maxRelisten, between tries.
const (
	firstRelisten = 50 * time.Millisecond
	maxRelisten   = 5 * time.Second
)

// listenState is whether the store listens for commits, and if not, why.
type listenState struct {
	mu      sync.Mutex
	err     error         // nil while listening
	changed chan struct{} // closed, and replaced, when err changes
}

func newListenState() listenState { return listenState{changed: make(chan struct{})} }

func (s *listenState) set(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
	close(s.changed)
	s.changed = make(chan struct{})
}

// get returns a channel closed at the next change, and why the store is not
// listening (nil while it is).
func (s *listenState) get() (<-chan struct{}, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed, s.err
}

// Ping checks that the database answers and that the store is listening for other
// nodes' commits, so that a health check can report the node unready while either is
// not so: writes fail, or the events of other nodes arrive only by polling.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping the database: %w", err)
	}
	if _, err := db.listen.get(); err != nil {
		return fmt.Errorf("listen for commits: %w", err)
	}
	return nil
}

// connectListener opens the listener's own connection, outside the pool, and listens.
func (db *DB) connectListener(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, db.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, fmt.Errorf("connect to listen: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("listen: %w", err)
	}
	return conn, nil
}

// runListener signals Committed for every notification on conn, and when conn is lost
// connects again, until ctx ends. Once it listens again it signals, for the commits
// it may have missed meanwhile.
func (db *DB) runListener(ctx context.Context, conn *pgx.Conn) {
	for {
		err := db.relay(ctx, conn)
		conn.Close(context.WithoutCancel(ctx))
		if ctx.Err() != nil {
			return
		}
		db.listen.set(err)
		db.logger.Warn("lost the database connection that listens for commits; reconnecting", "err", err)
		if conn = db.reconnect(ctx); conn == nil {
			return
		}
		db.listen.set(nil)
		db.logger.Info("listening for commits again")
		db.signalCommitted()
	}
}

// relay signals Committed for each notification on conn until conn fails or ctx
// ends. A notification of a commit that this store made itself, and has signalled
// already, is dropped.
func (db *DB) relay(ctx context.Context, conn *pgx.Conn) error {
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if seq, err := strconv.ParseInt(n.Payload, 10, 64); err == nil && seq <= db.localSeq.Load() {
			continue
		}
		db.signalCommitted()
	}
}

// reconnect connects the listener again, waiting longer after each failure, and
// returns nil once ctx has ended.
func (db *DB) reconnect(ctx context.Context) *pgx.Conn {
	wait := firstRelisten
	for {
		timer := time.NewTimer(wait/2 + rand.N(wait/2+1))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}
		conn, err := db.connectListener(ctx)
		if err == nil {
			return conn
		}
		if ctx.Err() != nil {
			return nil
		}
		db.listen.set(err)
		wait = min(2*wait, maxRelisten)
	}
}

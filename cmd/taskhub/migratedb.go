package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"iter"
	"os"

	"taskhub/tasks/postgres"
	"taskhub/tasks/sqlite"
)

// migrateDB is `taskhub migrate-db`: it copies an SQLite database into an empty
// PostgreSQL one, tasks and their notes with their ids and the event log with its
// seqs, so that the dashboards' Last-Event-IDs stay valid. The copy is one read of the
// file and one transaction on PostgreSQL: it is all there or not at all.
func migrateDB(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet("taskhub migrate-db", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "the SQLite database `file` to copy")
	to := fs.String("to", "", "the postgres:// `URL` of the database to copy it into, which must have no tasks and no events")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *from == "":
		return fmt.Errorf("%w: --from is required: the SQLite database file to copy", errUsage)
	case !isPostgres(*to):
		return fmt.Errorf("%w: --to must be a postgres:// or postgresql:// URL, got %q", errUsage, *to)
	}
	// Open would create a missing file: a typo in --from must not copy an empty
	// database.
	if _, err := os.Stat(*from); err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	src, err := sqlite.Open(ctx, *from)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, src.Close()) }()
	dst, err := postgres.Open(ctx, *to, postgres.Config{})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, dst.Close()) }()

	x, err := src.Export(ctx)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, x.Close()) }()
	n, err := dst.Import(ctx, postgres.Dump{
		Tasks:      x.Tasks(ctx),
		Events:     events(x.Events(ctx)),
		LastSeq:    x.LastSeq,
		LastTaskID: x.LastTaskID,
		Notes:      x.Notes(ctx),
		LastNoteID: x.LastNoteID,
	})
	if errors.Is(err, postgres.ErrNotEmpty) {
		return fmt.Errorf("--to: %w: migrate-db copies into an empty database only, and changed nothing", err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "copied %d tasks (%d labels, %d dependencies, %d notes) and %d events; last seq %d\n",
		n.Tasks, n.Labels, n.Dependencies, n.Notes, n.Events, x.LastSeq)
	return nil
}

// events turns the rows of SQLite's event log into PostgreSQL's, column for column.
func events(rows iter.Seq2[sqlite.Event, error]) iter.Seq2[postgres.Event, error] {
	return func(yield func(postgres.Event, error) bool) {
		for e, err := range rows {
			if !yield(postgres.Event(e), err) {
				return
			}
		}
	}
}

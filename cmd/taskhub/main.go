// Command taskhub is the TaskHub server and its tools: see `taskhub help`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"taskhub/tasks"
)

// version is stamped at build time: go build -ldflags "-X main.version=…".
var version = "dev"

const usage = `TaskHub: a real-time task hub for AI agents and the people who watch them.

Usage:
  taskhub serve [flags]     run the server (taskhub serve -h lists its flags)
  taskhub tail [flags]      print the server's events as they happen (taskhub tail -h)
  taskhub mcp [flags]       serve MCP over stdin/stdout on the server's database (taskhub mcp -h)
  taskhub migrate-db --from FILE --to postgres://…
                            copy an SQLite database into an empty PostgreSQL one (taskhub migrate-db -h)
  taskhub version           print the version
  taskhub help              print this help

Every flag can also be set from the environment as TASKHUB_<FLAG>, for example
TASKHUB_DB=/var/lib/taskhub.db; a flag on the command line wins over the environment.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// errUsage marks an error in how taskhub was called: exit status 2.
var errUsage = errors.New("usage")

// run is the whole program; main only adds the process around it. It returns the exit
// status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		err = serve(ctx, rest, stdout, stderr)
	case "tail":
		err = tail(ctx, rest, stdout, stderr)
	case "mcp":
		err = mcpStdio(ctx, rest, os.Stdin, stdout, stderr)
	case "migrate-db":
		err = migrateDB(ctx, rest, stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "taskhub %s\n", version)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
	default:
		err = fmt.Errorf("%w: unknown command %q; run taskhub help", errUsage, cmd)
	}
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "taskhub: %v\n", strings.TrimPrefix(err.Error(), "usage: "))
		return 2
	default:
		fmt.Fprintf(stderr, "taskhub: %v\n", err)
		return 1
	}
}

// parseFlags parses args into fs after taking each flag's default from the
// environment (TASKHUB_<FLAG>, dashes as underscores). Errors are usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		name := "TASKHUB_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok && err == nil {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%w: %s=%q: %v", errUsage, name, v, e)
			}
		}
	})
	if err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return nil
}

// openStore opens the database db names (see openDB), and returns with it the
// function that closes it, logging what closing it says.
func openStore(ctx context.Context, db string, logger *slog.Logger) (tasks.Store, func(), error) {
	store, err := openDB(ctx, db, logger)
	if err != nil {
		return nil, nil, err
	}
	return store, func() {
		if err := store.Close(); err != nil {
			logger.Error("close database", "err", err)
		}
	}, nil
}

// newLogger builds the process's logger on stderr.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("%w: --log-level must be debug, info, warn or error, got %q", errUsage, level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("%w: --log-format must be text or json, got %q", errUsage, format)
}

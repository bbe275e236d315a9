package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"taskhub/tasks"
	"taskhub/tasks/sqlite"
)

// TestMain lets the test binary stand in for taskhub itself: with RUN_AS_TASKHUB set it
// runs main, so tests can start the real program as a child process and signal it.
// With RUN_AS_WRITER=FILE it is another process that writes one task to FILE.
func TestMain(m *testing.M) {
	if os.Getenv("RUN_AS_TASKHUB") == "1" {
		main()
		return
	}
	if path := os.Getenv("RUN_AS_WRITER"); path != "" {
		if err := writeAsOtherProcess(path); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startServe runs `taskhub serve` with args as a child process and returns it with the
// URL from its listening line.
func startServe(t testing.TB, env []string, args ...string) (*exec.Cmd, string, *bufio.Reader) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"serve"}, args...)...)
	cmd.Env = append(append(os.Environ(), "RUN_AS_TASKHUB=1"), env...)
	cmd.Stderr = io.Discard
	if testing.Verbose() {
		cmd.Stderr = os.Stderr
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	out := bufio.NewReader(stdout)
	line := make(chan string, 1)
	go func() { s, _ := out.ReadString('\n'); line <- s }()
	select {
	case s := <-line:
		m := regexp.MustCompile(`^taskhub listening on (http://127\.0\.0\.1:[1-9][0-9]*)\n$`).FindStringSubmatch(s)
		if m == nil {
			t.Fatalf("listening line %q", s)
		}
		return cmd, m[1], out
	case <-time.After(20 * time.Second):
		t.Fatal("no listening line within 20s")
	}
	panic("unreachable")
}

func TestServeLifecycle(t *testing.T) {
	db := filepath.Join(t.TempDir(), "taskhub.db")
	// The database comes from the environment form of --db.
	cmd, url, stdout := startServe(t, []string{"TASKHUB_DB=" + db}, "--addr", "127.0.0.1:0")

	resp, err := http.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != `{"status":"ok"}` {
		t.Fatalf("healthz: %d %s", resp.StatusCode, body)
	}
	resp, err = http.Post(url+"/api/tasks", "application/json", strings.NewReader(`{"title":"survives shutdown"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d", resp.StatusCode)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(stdout)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	if len(rest) != 0 {
		t.Errorf("stdout after the listening line: %q", rest)
	}

	store, err := sqlite.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if task, err := tasks.NewService(store).Get(context.Background(), 1); err != nil || task.Title != "survives shutdown" {
		t.Errorf("after restart: %+v, %v", task, err)
	}
}

func TestRunArguments(t *testing.T) {
	db := filepath.Join(t.TempDir(), "taskhub.db")
	for _, tc := range []struct {
		name   string
		env    map[string]string
		args   []string
		code   int
		output string // in stdout or stderr
	}{
		{"no command", nil, nil, 2, "Usage:"},
		{"help", nil, []string{"help"}, 0, "taskhub serve"},
		{"version", nil, []string{"version"}, 0, "taskhub dev"},
		{"unknown command", nil, []string{"serv"}, 2, `unknown command "serv"`},
		{"unknown flag", nil, []string{"serve", "--adr", "x"}, 2, "flag provided but not defined: -adr"},
		{"stray argument", nil, []string{"serve", "extra"}, 2, `unexpected argument "extra"`},
		{"serve help", nil, []string{"serve", "-h"}, 0, "-addr host:port"},
		{"public address", nil, []string{"serve", "--addr", "0.0.0.0:0", "--db", db}, 2, "not a loopback address"},
		{"public address from env", map[string]string{"TASKHUB_ADDR": ":8080"}, []string{"serve", "--db", db}, 2, "not a loopback address"},
		{"bad env value", map[string]string{"TASKHUB_INSECURE": "maybe"}, []string{"serve"}, 2, "TASKHUB_INSECURE"},
		{"bad log level", nil, []string{"serve", "--log-level", "loud"}, 2, "--log-level"},
		{"bad log format", nil, []string{"serve", "--log-format", "xml"}, 2, "--log-format"},
		{"unusable database", nil, []string{"serve", "--addr", "127.0.0.1:0", "--db", t.TempDir()}, 1, "open database"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tc.args, &stdout, &stderr)
			if code != tc.code || !strings.Contains(stdout.String()+stderr.String(), tc.output) {
				t.Errorf("exit %d, want %d; output:\n%s%s\nwant it to contain %q", code, tc.code, stdout.String(), stderr.String(), tc.output)
			}
		})
	}
}

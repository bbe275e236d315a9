//go:build linux

package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"taskhub/tasks/postgres/pgtest"
)

// TestNodes runs the cross-node mode for a moment on a fresh PostgreSQL database:
// every event written to node 0 must reach each subscriber of both nodes once, with
// a latency measured on each. A second run on the same database, which now has tasks,
// is refused.
func TestNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	_, dsn := pgtest.NewDatabase(t)
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("needs the go command to build the server: %v", err)
	}
	server := filepath.Join(t.TempDir(), "taskhub")
	if out, err := exec.Command(goTool, "build", "-o", server, "taskhub/cmd/taskhub").CombinedOutput(); err != nil {
		t.Fatalf("build the server: %v\n%s", err, out)
	}
	args := []string{"--nodes", "2", "--db", dsn, "--server", server, "--subscribers", "3", "--events", "30", "--rate", "100",
		"--publishers", "2", "--drain", "3s", "--timeout", "1m"}
	out := runMode(t, args...)
	expect(t, out, "events_published", "30 of 30 (0 errors)")
	expect(t, out, "events_not_matched", "0 ")
	for _, node := range []string{"node0_", "node1_"} {
		expect(t, out, node+"delivered", "90 / 90 expected; 0 missing (0 subscribers short), 0 duplicate, 0 out of order, 0 past the run; 0 closed")
		for _, key := range []string{"latency_ack_to_parsed", "latency_sent_to_parsed"} {
			f := strings.Fields(out[node+key]) // "p50 X ms, p99 Y ms, max Z ms (of 90)…"
			if len(f) < 11 || f[0] != "p50" || strings.HasPrefix(f[7], "-") || f[7] == "0.000" || !strings.HasPrefix(f[10], "90)") {
				t.Errorf("%s%s: %q", node, key, out[node+key])
			}
		}
		if cpu := number(t, out, node+"server_cpu"); cpu < 0 {
			t.Errorf("%sserver_cpu: %s", node, out[node+"server_cpu"])
		}
	}

	var stdout, stderr strings.Builder
	if code := run(args, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "give an empty one") {
		t.Errorf("second run on the same database: exit %d, %q; want 1 and a refusal", code, stderr.String())
	}
}

//go:build linux

package main

import (
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestModes runs the storm, the soak and the write path for a moment against the
// real server, built from cmd/taskhub, and checks that each reports sane figures.
func TestModes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("needs the go command to build the server: %v", err)
	}
	server := filepath.Join(t.TempDir(), "taskhub")
	if out, err := exec.Command(goTool, "build", "-o", server, "taskhub/cmd/taskhub").CombinedOutput(); err != nil {
		t.Fatalf("build the server: %v\n%s", err, out)
	}
	common := []string{"--server", server, "--settle", "0", "--drain", "3s", "--timeout", "1m"}

	t.Run("storm", func(t *testing.T) {
		for _, restart := range []bool{false, true} {
			args := append([]string{"--storm", "--subscribers", "20", "--events", "50", "--publishers", "2"}, common...)
			if restart {
				args = append(args, "--storm-restart")
			}
			out := runMode(t, args...)
			expect(t, out, "all_caught_up", "20 of 20 subscribers;")
			expect(t, out, "replayed", "1000 / 1000 expected")
			expect(t, out, "delivery_anomalies", "0 duplicate, 0 out of order, 0 with a seq past the log's end")
			expect(t, out, "closed_by_server", "0")
			if took := number(t, out, "time_until_all_caught_up"); took <= 0 || took > 30_000 {
				t.Errorf("all caught up after %g ms", took)
			}
			cpuFigures(t, out, "replayed_events")
			if restart {
				expect(t, out, "server_restarted_before_storm", "yes")
				if !strings.Contains(out["server"], "restarted on its database") {
					t.Errorf("server: %s", out["server"])
				}
			} else {
				expect(t, out, "server_restarted_before_storm", "no")
			}
		}
	})

	t.Run("soak", func(t *testing.T) {
		out := runMode(t, append([]string{"--soak", "--subscribers", "20", "--rate", "50", "--duration", "3s",
			"--reconnect-every", "500ms", "--reconnect-fraction", "0.25", "--report-every", "1s"}, common...)...)
		samples := strings.Split(out["soak_sample"], "\n")
		if len(samples) < 3 {
			t.Fatalf("%d samples, want one at the start, at least one each second, and one at the end: %q", len(samples), samples)
		}
		for _, s := range samples {
			f := sampleFields(t, s)
			if f["goroutines"] < 20 || f["open_files"] < 20 || f["rss_kib"] < 1024 || f["gaps"] != 0 || f["duplicates"] != 0 || f["closed"] != 0 {
				t.Errorf("sample %s", s)
			}
		}
		delivered := strings.Fields(out["delivered"]) // "N / N expected …"
		if len(delivered) < 3 || delivered[0] != delivered[2] || delivered[0] == "0" {
			t.Errorf("delivered: %s", out["delivered"])
		}
		expect(t, out, "delivery_anomalies", "0 events missing where a later one came, 0 duplicated or out of order")
		reconnected := strings.Fields(out["reconnected"]) // "N of M asked for"
		if len(reconnected) < 3 || reconnected[0] != reconnected[2] || reconnected[0] == "0" {
			t.Errorf("reconnected: %s", out["reconnected"])
		}
		expect(t, out, "closed_by_server", "0")
		cpuFigures(t, out, "deliveries")
	})

	t.Run("writes", func(t *testing.T) {
		out := runMode(t, append([]string{"--writes", "--publishers", "4", "--duration", "1s"}, common...)...)
		for _, phase := range []string{"creates", "updates"} {
			f := strings.Fields(out[phase]) // "N in 1.002s: R/s, 0 clients failed"
			if len(f) < 6 || f[0] == "0" || f[len(f)-3] != "0" {
				t.Errorf("%s: %s", phase, out[phase])
				continue
			}
			expect(t, out, "  "+phase+"_events", f[0]+" ")
			if rate := number(t, out, "  "+phase+"_per_server_cpu_second"); rate <= 0 {
				t.Errorf("%s per server CPU-second: %g", phase, rate)
			}
		}
	})
}

// runMode runs the bench with args and returns its summary by key; the lines a key
// repeats on are joined with newlines.
func runMode(t *testing.T, args ...string) map[string]string {
	t.Helper()
	var stdout, stderr strings.Builder
	code := run(args, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("taskhub-bench %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout.String(), stderr.String())
	}
	out := map[string]string{}
	for l := range strings.Lines(stdout.String()) {
		key, value, ok := strings.Cut(strings.TrimRight(l, "\n"), ":")
		if !ok {
			key, value, ok = strings.Cut(l, " ") // soak_sample t=…
		}
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		if prev, dup := out[key]; dup {
			value = prev + "\n" + value
		}
		out[key] = value
	}
	return out
}

// expect checks that the summary's key starts with want.
func expect(t *testing.T, out map[string]string, key, want string) {
	t.Helper()
	if !strings.HasPrefix(out[key], want) {
		t.Errorf("%s: %q, want it to start with %q", key, out[key], want)
	}
}

// number returns the number that starts the summary's key.
func number(t *testing.T, out map[string]string, key string) float64 {
	t.Helper()
	f := strings.Fields(out[key])
	if len(f) == 0 {
		t.Fatalf("%s: missing", key)
	}
	n, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		t.Fatalf("%s: %q: %v", key, out[key], err)
	}
	return n
}

// cpuFigures checks the server's CPU over the phase, and what per CPU-second: a
// phase may take less than one clock tick of the server's CPU, but not a negative
// one.
func cpuFigures(t *testing.T, out map[string]string, what string) {
	t.Helper()
	if cpu := number(t, out, "server_cpu"); cpu < 0 {
		t.Errorf("server_cpu %s", out["server_cpu"])
	}
	per := out[what+"_per_server_cpu_second"]
	if strings.HasPrefix(per, "n/a") {
		return
	}
	if n := number(t, out, what+"_per_server_cpu_second"); n <= 0 {
		t.Errorf("%s per server CPU-second: %s", what, per)
	}
}

// sampleFields parses "t=1s goroutines=12 …" into numbers, t left out.
func sampleFields(t *testing.T, s string) map[string]int64 {
	t.Helper()
	f := map[string]int64{}
	for _, kv := range strings.Fields(s) {
		k, v, _ := strings.Cut(kv, "=")
		if k == "t" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("sample %q: %s: %v", s, kv, err)
		}
		f[k] = n
	}
	return f
}

// TestFollow checks how a following subscriber counts what it parses.
func TestFollow(t *testing.T) {
	f := &fleet{}
	s := &subscriber{last: 10}
	for _, id := range []int64{11, 12, 15, 14, 15, 16, -1} {
		f.next(s, id)
	}
	if got, want := [3]int64{f.delivered.Load(), f.gaps.Load(), f.dups.Load()}, [3]int64{4, 2, 3}; got != want {
		t.Errorf("delivered, gaps, duplicates = %v, want %v", got, want)
	}
	if s.last != 16 {
		t.Errorf("last %d, want 16", s.last)
	}
}

// TestModeFlags checks that a mode refuses what does not go with it.
func TestModeFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--storm", "--soak"}, "give one"},
		{[]string{"--floor", "--writes"}, "give one"},
		{[]string{"--storm-restart"}, "--storm-restart goes with --storm"},
		{[]string{"--storm", "--storm-restart", "--url", "http://127.0.0.1:9"}, "not with --url"},
		{[]string{"--duration", "1s"}, "--duration goes with --soak or --writes"},
		{[]string{"--storm", "--reconnect-every", "1s"}, "--reconnect-every goes with --soak"},
		{[]string{"--soak", "--batch", "1s"}, "--batch goes with"},
		{[]string{"--soak", "--events", "10"}, "--events goes with"},
		{[]string{"--soak", "--rate", "0"}, "--rate above 0"},
		{[]string{"--soak", "--reconnect-fraction", "1.5"}, "--reconnect-fraction must be 0–1"},
		{[]string{"--soak", "--duration", "10m", "--timeout", "5m"}, "must be longer than --duration"},
		{[]string{"--writes", "--subscribers", "10"}, "--subscribers goes with"},
		{[]string{"--writes", "--duration", "0s"}, "--duration must be positive"},
		{[]string{"--storm", "extra"}, `unexpected argument "extra"`},
		{[]string{"--nodes", "3"}, "--nodes needs --db"},
		{[]string{"--nodes", "1", "--db", "postgres://127.0.0.1/x"}, "--nodes must be 2–16"},
		{[]string{"--db", "postgres://127.0.0.1/x"}, "--db goes with --nodes"},
		{[]string{"--nodes", "2", "--soak", "--db", "postgres://127.0.0.1/x"}, "give one"},
		{[]string{"--nodes", "2", "--db", "postgres://127.0.0.1/x", "--url", "http://127.0.0.1:9"}, "not with --url"},
	} {
		var stdout, stderr strings.Builder
		if code := run(tc.args, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}

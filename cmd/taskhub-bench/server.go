//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// child is a taskhub server this tool started.
type child struct {
	path string
	args []string
	env  []string
	dir  string // temp dir with its database and log
	url  string

	cmd     *exec.Cmd
	done    chan error // Wait's result
	exited  bool
	exitErr error
}

// startServer runs `PATH serve` on a free loopback port with a new database and waits
// for its one stdout line. Its logs go to log.txt in its temp dir (printed at the end
// when they hold anything). The TASKHUB_* environment is not passed on, so that only
// these flags configure it.
func startServer(ctx context.Context, path string, extraArgs, extraEnv []string) (*child, error) {
	dir, err := os.MkdirTemp("", "taskhub-bench-")
	if err != nil {
		return nil, err
	}
	c := &child{
		path: path,
		args: append([]string{"serve", "--addr", "127.0.0.1:0", "--db", filepath.Join(dir, "bench.db"), "--log-level", "warn"}, extraArgs...),
		dir:  dir,
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TASKHUB_") {
			c.env = append(c.env, kv)
		}
	}
	c.env = append(c.env, extraEnv...)
	if err := c.start(ctx); err != nil {
		c.removeDir()
		return nil, err
	}
	return c, nil
}

// start runs the server and waits for the line that says where it listens.
func (c *child) start(ctx context.Context) error {
	logf, err := os.OpenFile(c.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own descriptor
	cmd := exec.Command(c.path, c.args...)
	cmd.Env = c.env
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", c.path, err)
	}
	c.cmd, c.done, c.exited, c.exitErr = cmd, make(chan error, 1), false, nil
	line := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stdout)
		l, _ := r.ReadString('\n')
		line <- l
		_, _ = io.Copy(io.Discard, r) // it prints nothing else; never let it block
	}()
	go func() { c.done <- cmd.Wait() }()
	const prefix = "taskhub listening on "
	select {
	case l := <-line:
		if !strings.HasPrefix(l, prefix) {
			c.terminate()
			return fmt.Errorf("%s printed %q, not %q…; its log: %s", c.path, l, prefix, c.logTail())
		}
		c.url = strings.TrimSpace(strings.TrimPrefix(l, prefix))
		return nil
	case <-time.After(30 * time.Second):
	case <-ctx.Done():
	}
	c.terminate()
	return fmt.Errorf("%s did not say where it listens within 30s; its log: %s", c.path, c.logTail())
}

// terminate ends the server: SIGTERM, then SIGKILL after 10s. It returns the server's
// exit error, if any; once it has ended, it returns the same again.
func (c *child) terminate() error {
	if c.exited {
		return c.exitErr
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case err = <-c.done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		err = fmt.Errorf("did not stop within 10s of SIGTERM: killed (%v)", <-c.done)
	}
	c.exited, c.exitErr = true, err
	return err
}

// restart stops the server and starts it again on the same database, on a new port.
func (c *child) restart(ctx context.Context) error {
	if err := c.terminate(); err != nil {
		return fmt.Errorf("stop the server to restart it: %w", err)
	}
	return c.start(ctx)
}

// stop ends the server and removes its temp dir unless its log has something in it.
// It returns the server's exit error, if any.
func (c *child) stop() error {
	err := c.terminate()
	c.removeDir()
	return err
}

func (c *child) removeDir() {
	if fi, err := os.Stat(c.logPath()); err != nil || fi.Size() == 0 {
		os.RemoveAll(c.dir)
	}
}

func (c *child) logPath() string { return filepath.Join(c.dir, "log.txt") }

// logTail returns the end of the child's log.
func (c *child) logTail() string {
	b, _ := os.ReadFile(c.logPath())
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// openFiles counts the file descriptors process pid has open.
func openFiles(pid int) (int, error) {
	des, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(des), err
}

// rssKiB returns the resident set of process pid (VmRSS), or with peak its high-water
// mark (VmHWM), in KiB.
func rssKiB(pid int, peak bool) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	key := "VmRSS:"
	if peak {
		key = "VmHWM:"
	}
	for l := range bytes.Lines(b) {
		if rest, ok := bytes.CutPrefix(l, []byte(key)); ok {
			f := strings.Fields(string(rest)) // "12345 kB"
			if len(f) == 2 && f[1] == "kB" {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s line", pid, key)
}

// cpuTimes is a process's CPU time so far.
type cpuTimes struct{ user, sys time.Duration }

func (c cpuTimes) total() time.Duration { return c.user + c.sys }

func (c cpuTimes) sub(d cpuTimes) cpuTimes { return cpuTimes{c.user - d.user, c.sys - d.sys} }

// procCPU reads utime and stime (fields 14 and 15) of /proc/PID/stat, in clock ticks
// of tick.
func procCPU(pid int, tick time.Duration) (cpuTimes, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return cpuTimes{}, err
	}
	// The command name, field 2, is in parentheses and may hold spaces: count fields
	// from the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return cpuTimes{}, errors.New("unexpected /proc/PID/stat format")
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3, state
	if len(f) < 13 {
		return cpuTimes{}, errors.New("short /proc/PID/stat")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return cpuTimes{}, err
	}
	return cpuTimes{time.Duration(utime) * tick, time.Duration(stime) * tick}, nil
}

// procWrites reads syscw of /proc/PID/io: how many write(2)-family calls the process
// has made.
func procWrites(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0, err
	}
	for l := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(l, "syscw:"); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/io has no syscw line", pid)
}

// selfCPU returns this process's CPU time so far.
func selfCPU() cpuTimes {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return cpuTimes{time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())}
}

// clockTick returns the length of one /proc clock tick. Without cgo there is no
// sysconf(_SC_CLK_TCK); getconf answers it, and 100 Hz is what Linux uses on every
// common architecture (USER_HZ), the fallback.
func clockTick() (time.Duration, string) {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if hz, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && hz > 0 {
			return time.Second / time.Duration(hz), fmt.Sprintf("%d Hz (getconf CLK_TCK)", hz)
		}
	}
	return 10 * time.Millisecond, "100 Hz (assumed: getconf CLK_TCK failed)"
}

// raiseNoFile raises this process's soft open-files limit to its hard limit; a child
// started afterwards inherits it. It returns the limits in force.
func raiseNoFile() (soft, hard uint64, err error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, err
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return lim.Cur, lim.Max, err
		}
	}
	return lim.Cur, lim.Max, nil
}

// procNoFile returns the open-files limits of process pid from /proc/PID/limits.
func procNoFile(pid int) (soft, hard string, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return "", "", err
	}
	for l := range bytes.Lines(b) {
		if rest, ok := bytes.CutPrefix(l, []byte("Max open files")); ok {
			if f := strings.Fields(string(rest)); len(f) >= 2 {
				return f[0], f[1], nil
			}
		}
	}
	return "", "", fmt.Errorf("/proc/%d/limits has no open-files line", pid)
}

// machineCPU returns the time all CPUs spent busy (user, nice, system, irq, softirq,
// steal) and in total, from the first line of /proc/stat.
func machineCPU(tick time.Duration) (busy, total time.Duration, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	first, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(first))
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0, errors.New("unexpected /proc/stat format")
	}
	for i, v := range f[1:9] { // user nice system idle iowait irq softirq steal
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, 0, err
		}
		d := time.Duration(n) * tick
		total += d
		if i != 3 && i != 4 {
			busy += d
		}
	}
	return busy, total, nil
}

// cpuSpan is the CPU time spent over a phase: the server's (when its pid is known),
// this process's and the whole machine's.
type cpuSpan struct {
	pid            int
	tick           time.Duration
	server0, self0 cpuTimes
	busy0, total0  time.Duration

	server       cpuTimes
	serverOK     bool
	self         cpuTimes
	machineBusy  time.Duration // all CPUs
	machineTotal time.Duration
}

// startCPU starts measuring a phase; pid 0 leaves the server's CPU out.
func startCPU(pid int, tick time.Duration) (*cpuSpan, error) {
	c := &cpuSpan{pid: pid, tick: tick}
	if pid != 0 {
		var err error
		if c.server0, err = procCPU(pid, tick); err != nil {
			return nil, err
		}
	}
	c.busy0, c.total0, _ = machineCPU(tick)
	c.self0 = selfCPU()
	return c, nil
}

// stop ends the phase.
func (c *cpuSpan) stop() error {
	c.self = selfCPU().sub(c.self0)
	if busy, total, err := machineCPU(c.tick); err == nil && total > c.total0 {
		c.machineBusy, c.machineTotal = busy-c.busy0, total-c.total0
	}
	if c.pid != 0 {
		now, err := procCPU(c.pid, c.tick)
		if err != nil {
			return err
		}
		c.server, c.serverOK = now.sub(c.server0), true
	}
	return nil
}

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// BenchmarkPatchHTTP runs the whole server, as `taskhub serve` does, and measures
// durable task updates per second through PATCH /api/tasks/{id} on loopback: 64
// concurrent clients, each request a real change (synchronous=FULL) with its event.
func BenchmarkPatchHTTP(b *testing.B) {
	url, _ := startServer(b)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	const tasks = 64
	for range tasks {
		resp, err := client.Post(url+"/api/tasks", "application/json", strings.NewReader(`{"title":"load"}`))
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
	}
	before := lastSeq(b, client, url)
	var counter atomic.Int64
	b.SetParallelism(32) // 64 clients on 2 CPUs
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := counter.Add(1)
			body := fmt.Sprintf(`{"description":"update %d"}`, i)
			req, _ := http.NewRequest(http.MethodPatch, fmt.Sprintf("%s/api/tasks/%d", url, 1+i%tasks), strings.NewReader(body))
			req.Header.Set("Content-Type", "application/merge-patch+json")
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("PATCH: %d", resp.StatusCode)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
	if got := lastSeq(b, client, url) - before; got != int64(b.N) {
		b.Errorf("%d updates made %d events", b.N, got)
	}
}

func lastSeq(b *testing.B, client *http.Client, url string) int64 {
	resp, err := client.Get(url + "/api/events?after=9223372036854775807&limit=1")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct {
		LastSeq int64 `json:"last_seq"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		b.Fatal(err)
	}
	return page.LastSeq
}

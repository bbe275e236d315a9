package tasks_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"taskhub/tasks"
)

// The figures that matter are "changes/s": durable changes (synchronous=FULL), each
// with its event, per second. The Parallel variants have many writers at once, which
// is what group commit is for.

func BenchmarkCreate(b *testing.B) {
	svc, _ := newService(b)
	ctx := context.Background()
	u := tasks.Update{Title: tasks.Value("benchmark task"), Labels: tasks.Value([]string{"bench", "load"})}
	for b.Loop() {
		if _, err := svc.Create(ctx, u); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "changes/s")
}

func BenchmarkUpdate(b *testing.B) {
	svc, _ := newService(b)
	ctx := context.Background()
	task, err := svc.Create(ctx, tasks.Update{Title: tasks.Value("benchmark task")})
	if err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		i++
		if _, err := svc.Update(ctx, task.ID, 0, tasks.Update{Description: tasks.Value(strconv.Itoa(i))}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "changes/s")
}

func BenchmarkCreateParallel(b *testing.B) {
	svc, _ := newService(b)
	ctx := context.Background()
	u := tasks.Update{Title: tasks.Value("benchmark task"), Labels: tasks.Value([]string{"bench", "load"})}
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := svc.Create(ctx, u); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "changes/s")
}

func BenchmarkUpdateParallel(b *testing.B) {
	svc, _ := newService(b)
	ctx := context.Background()
	const n = 64
	ids := make([]int64, n)
	for i := range ids {
		task, err := svc.Create(ctx, tasks.Update{Title: tasks.Value("benchmark task")})
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = task.ID
	}
	var counter atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := counter.Add(1)
			u := tasks.Update{Description: tasks.Value(strconv.FormatInt(i, 10))}
			if _, err := svc.Update(ctx, ids[i%n], 0, u); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "changes/s")
}

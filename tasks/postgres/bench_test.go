package postgres

import (
	"context"
	"testing"

	"taskhub/tasks"
	"taskhub/tasks/postgres/pgtest"
)

// The figure that matters is "changes/s": durable creates, each with its event, per
// second, from 32 writers at once, as in package tasks' benchmarks of SQLite.

func benchmarkCreateParallel(b *testing.B, store tasks.Store) {
	svc := tasks.NewService(store)
	ctx := context.Background()
	u := tasks.Update{Title: tasks.Value("benchmark task"), Labels: tasks.Value([]string{"bench", "load"})}
	b.SetParallelism(32)
	b.ResetTimer() // the database's creation and migrations are not the load
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

// BenchmarkCreateParallel is one node.
func BenchmarkCreateParallel(b *testing.B) {
	_, dsn := pgtest.NewDatabase(b)
	benchmarkCreateParallel(b, openTest(b, dsn))
}

// BenchmarkCreateParallelThreeNodes shares the same load among three nodes.
func BenchmarkCreateParallelThreeNodes(b *testing.B) {
	_, dsn := pgtest.NewDatabase(b)
	all := []*DB{openTest(b, dsn), openTest(b, dsn), openTest(b, dsn)}
	benchmarkCreateParallel(b, &nodes{DB: all[0], all: all})
}

// BenchmarkCreateParallelThreeDatabases is the floor of the three nodes: the same load
// among three nodes of the same server, each on a database of its own, so that no
// node waits for another's commit to take its seqs. Against it,
// BenchmarkCreateParallelThreeNodes shows what the one committed order costs.
func BenchmarkCreateParallelThreeDatabases(b *testing.B) {
	all := make([]*DB, 3)
	for i := range all {
		_, dsn := pgtest.NewDatabase(b)
		all[i] = openTest(b, dsn)
	}
	benchmarkCreateParallel(b, &nodes{DB: all[0], all: all})
}

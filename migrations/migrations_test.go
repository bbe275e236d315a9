package migrations

import (
	"io/fs"
	"testing"
	"testing/fstest"
)

func TestFilesAreNumbered(t *testing.T) {
	for dialect, fsys := range map[string]fs.FS{"sqlite": SQLite, "postgres": Postgres} {
		ms, err := Read(fsys)
		if err != nil {
			t.Errorf("%s: %v", dialect, err)
		}
		if len(ms) == 0 {
			t.Errorf("%s: no migrations embedded", dialect)
		}
	}
	for _, tc := range []struct {
		name  string
		files fstest.MapFS
	}{
		{"gap", fstest.MapFS{"0001_a.sql": {}, "0003_c.sql": {}}},
		{"repeat", fstest.MapFS{"0001_a.sql": {}, "0001_b.sql": {}}},
		{"bad name", fstest.MapFS{"0001 a.sql": {}}},
	} {
		if _, err := Read(tc.files); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}

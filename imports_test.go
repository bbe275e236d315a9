package taskhub_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestImportRules keeps the package layout honest: the domain and the broadcaster
// stand on the standard library alone, with the project's internal packages, which do
// too; adapters never reach the store or each other, and only cmd wires everything.
func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	stdlibOnly := []string{"taskhub/tasks", "taskhub/broadcaster", "taskhub/migrations", "taskhub/web", "taskhub/internal/seqring"}
	forbidden := map[string][]string{
		"taskhub/tasks/sqlite":        {"taskhub/api", "taskhub/mcptools", "taskhub/broadcaster", "taskhub/web"},
		"taskhub/broadcaster/tasklog": {"taskhub/api", "taskhub/mcptools", "taskhub/web", "taskhub/tasks/sqlite"},
		"taskhub/tasks/storetest":     {"taskhub/api", "taskhub/mcptools", "taskhub/broadcaster", "taskhub/web", "taskhub/tasks/sqlite"},
		"taskhub/tasks/filewatch":     {"taskhub/api", "taskhub/mcptools", "taskhub/broadcaster", "taskhub/web", "taskhub/tasks/sqlite"},
		"taskhub/api":                 {"taskhub/tasks/sqlite", "taskhub/mcptools", "modernc.org/sqlite"},
		"taskhub/mcptools":            {"taskhub/tasks/sqlite", "taskhub/api", "modernc.org/sqlite"},
		"taskhub/webhooks":            {"taskhub/api", "taskhub/mcptools", "taskhub/web", "taskhub/tasks/sqlite", "taskhub/tasks/postgres"},
	}
	for pkg := range strings.FieldsSeq(string(out)) {
		deps, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}}", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		for line := range strings.Lines(string(deps)) {
			dep, std, _ := strings.Cut(strings.TrimSpace(line), " ")
			switch {
			case dep == pkg || std == "true":
			case strings.HasPrefix(dep, "taskhub/cmd/"):
				t.Errorf("%s imports %s: nothing may import cmd", pkg, dep)
			case slices.Contains(stdlibOnly, pkg) && !(strings.HasPrefix(dep, "taskhub/internal/") && slices.Contains(stdlibOnly, dep)):
				t.Errorf("%s imports %s: it may use only the standard library", pkg, dep)
			case slices.Contains(forbidden[pkg], dep):
				t.Errorf("%s imports %s, which it must not", pkg, dep)
			}
		}
	}
}

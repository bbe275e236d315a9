package api_test

import (
	"strings"
	"testing"

	"taskhub/api"
)

const hexA = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b" // sha256("secret")

func TestParseTokens(t *testing.T) {
	for _, tc := range []struct {
		name, data, err string
		n               int
	}{
		{"empty list", `[]`, "", 0},
		{"one", `[{"name":"ci","sha256":"` + hexA + `","scopes":["read","write"]}]`, "", 1},
		{"upper-case hex", `[{"name":"ci","sha256":"` + strings.ToUpper(hexA) + `","scopes":["admin"]}]`, "", 1},
		{"not JSON", `{`, "not a JSON list", 0},
		{"object", `{"name":"ci"}`, "not a JSON list", 0},
		{"null", `null`, "got null", 0},
		{"trailing data", `[] []`, "data after", 0},
		{"unknown field", `[{"name":"ci","token":"x","sha256":"` + hexA + `","scopes":["read"]}]`, "unknown field", 0},
		{"no name", `[{"name":" ","sha256":"` + hexA + `","scopes":["read"]}]`, "name is empty", 0},
		{"short digest", `[{"name":"ci","sha256":"abc","scopes":["read"]}]`, "64 hex digits", 0},
		{"not hex", `[{"name":"ci","sha256":"` + strings.Repeat("z", 64) + `","scopes":["read"]}]`, "not hex", 0},
		{"no scopes", `[{"name":"ci","sha256":"` + hexA + `","scopes":[]}]`, "scopes is empty", 0},
		{"unknown scope", `[{"name":"ci","sha256":"` + hexA + `","scopes":["root"]}]`, `unknown scope "root"`, 0},
		{"name twice", `[{"name":"ci","sha256":"` + hexA + `","scopes":["read"]},{"name":"ci","sha256":"` + strings.Repeat("0", 64) + `","scopes":["read"]}]`, "name given twice", 0},
		{"digest twice", `[{"name":"a","sha256":"` + hexA + `","scopes":["read"]},{"name":"b","sha256":"` + hexA + `","scopes":["read"]}]`, "same sha256", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := api.ParseTokens([]byte(tc.data))
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("error %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want one containing %q", err, tc.err)
			case err == nil && got.Len() != tc.n:
				t.Fatalf("%d tokens, want %d", got.Len(), tc.n)
			}
		})
	}
}

func TestRevoked(t *testing.T) {
	parse := func(s string) *api.Tokens {
		t.Helper()
		tok, err := api.ParseTokens([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	zero := strings.Repeat("0", 64)
	old := parse(`[{"name":"a","sha256":"` + hexA + `","scopes":["read"]},{"name":"b","sha256":"` + zero + `","scopes":["read"]}]`)
	for _, tc := range []struct {
		name, next string
		revoked    bool
	}{
		{"unchanged", `[{"name":"a","sha256":"` + hexA + `","scopes":["read","write"]}]`, false},
		{"gone", `[{"name":"b","sha256":"` + zero + `","scopes":["read"]}]`, true},
		{"lost read", `[{"name":"a","sha256":"` + hexA + `","scopes":["write"]}]`, true},
		{"new secret", `[{"name":"a","sha256":"` + strings.Repeat("1", 64) + `","scopes":["read"]}]`, true},
	} {
		if got := parse(tc.next).Revoked(old, "a"); got != tc.revoked {
			t.Errorf("%s: revoked %v, want %v", tc.name, got, tc.revoked)
		}
	}
}

package webhooks

import (
	"crypto/rand"
	"encoding/base64"
	"strings"

	"taskhub/tasks"
)

// A secret is "whsec_" and the standard base64 of its key, as Standard Webhooks
// libraries read it. Keys are 24 to 64 bytes; a new one is 32.
const (
	secretPrefix = "whsec_"
	minKey       = 24
	maxKey       = 64
	newKey       = 32
)

// newSecret returns a secret with a new random key.
func newSecret() string {
	key := make([]byte, newKey)
	rand.Read(key) // never fails (crypto/rand)
	return secretPrefix + base64.StdEncoding.EncodeToString(key)
}

// checkSecret checks a secret a client gave.
func checkSecret(s string) error {
	b64, ok := strings.CutPrefix(s, secretPrefix)
	key, err := base64.StdEncoding.DecodeString(b64)
	if !ok || err != nil || len(key) < minKey || len(key) > maxKey {
		return tasks.Errorf(tasks.EInvalid, "secret",
			"secret must be %q followed by the base64 of %d to %d random bytes (leave it out to have one made)", secretPrefix, minKey, maxKey)
	}
	return nil
}

package webhooks

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
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

// signature is the webhook-signature header of a message with id, timestamp and body,
// signed with each of secrets: "v1," and the base64 of HMAC-SHA256 of
// "id.timestamp.body", one per secret, space-separated.
func signature(secrets []string, id string, timestamp int64, body []byte) string {
	var b strings.Builder
	for i, s := range secrets {
		key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, secretPrefix)) // checked when stored
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(id))
		mac.Write([]byte{'.'})
		mac.Write(strconv.AppendInt(nil, timestamp, 10))
		mac.Write([]byte{'.'})
		mac.Write(body)
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("v1,")
		b.WriteString(base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	return b.String()
}

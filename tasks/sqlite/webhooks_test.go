package sqlite

import (
	"path/filepath"
	"testing"

	"taskhub/tasks"
	"taskhub/tasks/storetest"
)

func TestWebhookStoreContract(t *testing.T) {
	storetest.RunWebhooks(t, func(t *testing.T) tasks.WebhookStore {
		return openTest(t, filepath.Join(t.TempDir(), "taskhub.db"))
	})
}

package postgres

import (
	"testing"

	"taskhub/tasks"
	"taskhub/tasks/postgres/pgtest"
	"taskhub/tasks/storetest"
)

func TestWebhookStoreContract(t *testing.T) {
	pgtest.ServerDSN(t)
	storetest.RunWebhooks(t, func(t *testing.T) tasks.WebhookStore {
		_, dsn := pgtest.NewDatabase(t)
		return openTest(t, dsn)
	})
}

-- Idempotency-Key, SQLite's second step. A key is stored with the answer
-- it names in the transaction of the change it protects; each borrow
-- records the key of the request that made it (NULL without one), so the
-- end-of-run check can see a key applied twice.

-- +goose Up
ALTER TABLE borrows ADD COLUMN idempotency_key text;
CREATE INDEX borrows_idempotency_key ON borrows (member_id, idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE idempotency_keys (
	member_id   bigint      NOT NULL REFERENCES members (id) ON DELETE CASCADE,
	key         text        NOT NULL,
	fingerprint text        NOT NULL,
	status      integer     NOT NULL,
	body        bytea       NOT NULL,
	created_at  timestamptz NOT NULL,
	PRIMARY KEY (member_id, key)
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);

-- +goose Down
DROP TABLE idempotency_keys;
DROP INDEX borrows_idempotency_key;
ALTER TABLE borrows DROP COLUMN idempotency_key;

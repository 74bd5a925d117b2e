-- Change notifications for the notify read cache (notify.go): every
-- statement that changes a table a cached read depends on (a book, a page
-- of books, an API key with its member) sends one on the channel
-- statelab_changes, with the table's name. PostgreSQL delivers it to the
-- listeners when the transaction commits, and folds a transaction's
-- identical notifications into one. PostgreSQL only: SQLite's cache reads
-- the commit counter in shared memory and needs nothing of the kind.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION statelab_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('statelab_changes', TG_TABLE_NAME);
	RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER books_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON books
	FOR EACH STATEMENT EXECUTE FUNCTION statelab_notify_change();
CREATE TRIGGER members_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON members
	FOR EACH STATEMENT EXECUTE FUNCTION statelab_notify_change();
CREATE TRIGGER api_keys_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON api_keys
	FOR EACH STATEMENT EXECUTE FUNCTION statelab_notify_change();

-- +goose Down
DROP TRIGGER api_keys_notify ON api_keys;
DROP TRIGGER members_notify ON members;
DROP TRIGGER books_notify ON books;
DROP FUNCTION statelab_notify_change();

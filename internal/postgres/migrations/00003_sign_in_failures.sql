-- Failed sign-ins, SQLite's third step: per account (an email, whether or
-- not a member has it) and device ('' for a client the account does not
-- trust), kept for library.SignInFailureWindow.

-- +goose Up
CREATE TABLE sign_in_failures (
	id     bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	email  text        NOT NULL,
	device text        NOT NULL DEFAULT '',
	at     timestamptz NOT NULL
);
CREATE INDEX sign_in_failures_email ON sign_in_failures (email, at);
CREATE INDEX sign_in_failures_at ON sign_in_failures (at);

-- +goose Down
DROP TABLE sign_in_failures;

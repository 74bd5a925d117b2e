-- The catalog, the members, their API keys and the borrow records: the
-- same tables as SQLite's first step (internal/sqlite, migrations()), in
-- PostgreSQL's types. Times are timestamptz; ids never come back after a
-- delete (identity columns, like SQLite's AUTOINCREMENT).

-- +goose Up
CREATE TABLE books (
	id               bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	title            text    NOT NULL,
	author           text    NOT NULL,
	isbn             text    UNIQUE, -- NULL when unknown, so several books may lack one
	year             integer NOT NULL DEFAULT 0,
	copies           integer NOT NULL CHECK (copies >= 0),
	available_copies integer NOT NULL CHECK (available_copies >= 0 AND available_copies <= copies)
);

CREATE TABLE members (
	id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	email         text        NOT NULL,
	name          text        NOT NULL,
	role          text        NOT NULL DEFAULT 'member' CHECK (role IN ('member', 'librarian')),
	password_hash text        NOT NULL DEFAULT '',
	created_at    timestamptz NOT NULL
);
-- Emails are unique whatever their case, as SQLite's COLLATE NOCASE makes
-- them; the store looks them up by lower(email), through this index.
CREATE UNIQUE INDEX members_email ON members (lower(email));

CREATE TABLE api_keys (
	id         text        PRIMARY KEY,
	member_id  bigint      NOT NULL REFERENCES members (id) ON DELETE CASCADE,
	hash       bytea       NOT NULL,
	created_at timestamptz NOT NULL,
	-- seq orders keys made at the same instant, as SQLite's rowid does.
	seq        bigint      GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX api_keys_member_id ON api_keys (member_id);

CREATE TABLE borrows (
	id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	book_id       bigint      NOT NULL REFERENCES books (id) ON DELETE CASCADE,
	member_id     bigint      NOT NULL REFERENCES members (id) ON DELETE CASCADE,
	borrower_name text        NOT NULL,
	borrow_date   timestamptz NOT NULL,
	due_date      timestamptz NOT NULL,
	returned_at   timestamptz
);
CREATE INDEX borrows_member_id ON borrows (member_id);
CREATE INDEX borrows_book_id ON borrows (book_id);

-- +goose Down
DROP TABLE borrows;
DROP TABLE api_keys;
DROP TABLE members;
DROP TABLE books;

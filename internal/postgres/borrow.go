package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/statelab/statelab/internal/library"
)

// borrowColumns are the columns scanBorrow reads, in order, from
// borrowFrom.
const (
	borrowColumns = `b.id, b.book_id, bk.title, b.member_id, m.email, b.borrower_name,
       b.borrow_date, b.due_date, b.returned_at`
	borrowFrom = `
FROM borrows b
JOIN books bk ON bk.id = b.book_id
JOIN members m ON m.id = b.member_id`
)

// scanBorrow reads one row of borrowColumns, after the columns that lead
// points to, if any (a page's total).
func scanBorrow(row pgx.Row, lead ...any) (library.BorrowRecord, error) {
	var (
		r        library.BorrowRecord
		returned *time.Time
	)
	if err := row.Scan(append(lead, &r.ID, &r.BookID, &r.BookTitle, &r.MemberID, &r.BorrowerEmail, &r.BorrowerName,
		&r.BorrowDate, &r.DueDate, &returned)...); err != nil {
		return library.BorrowRecord{}, err
	}
	r.BorrowDate, r.DueDate = r.BorrowDate.UTC(), r.DueDate.UTC()
	if returned != nil {
		at := returned.UTC()
		r.Returned, r.ReturnDate = true, &at
	}
	return r, nil
}

// Borrow lends one copy of every requested book in one transaction, or
// none. The books' rows are locked first, in id order (so two borrows of
// the same books wait for each other instead of deadlocking), and then
// read: a borrower that waited for the last copy finds it gone, and the
// whole request is rolled back as EUNAVAILABLE.
func (db *DB) Borrow(ctx context.Context, req library.BorrowRequest) ([]library.BorrowRecord, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	var records []library.BorrowRecord
	err := db.inTxTouching(ctx, touchesBooks, func(tx pgx.Tx) error {
		var err error
		records, err = borrowIn(ctx, tx, req, nil)
		return err
	})
	if err != nil {
		return nil, err
	}
	return records, nil
}

// borrowIn lends the copies inside tx. key is the idempotency key of the
// request that asked (nil without one), written on every record it makes,
// so that the end-of-run check can tell a key applied twice from two
// requests.
func borrowIn(ctx context.Context, tx querier, req library.BorrowRequest, key *string) ([]library.BorrowRecord, error) {
	// The member's row is locked first, so that two borrows of one member
	// on two replicas count its loans one after the other.
	m, err := findMember(ctx, tx, `id = $1 FOR UPDATE`, req.MemberID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, library.Errorf(library.ENOTFOUND, "Member %d not found", req.MemberID)
	} else if err != nil {
		return nil, err
	}
	var active int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM borrows WHERE member_id = $1 AND returned_at IS NULL`, m.ID).Scan(&active); err != nil {
		return nil, fmt.Errorf("postgres: borrow: count loans: %w", err)
	}
	if err := library.CheckLoans(active, len(req.BookIDs)); err != nil {
		return nil, err
	}

	type shelf struct {
		title     string
		available int
	}
	books := make(map[int64]shelf, len(req.BookIDs))
	rows, err := tx.Query(ctx, `SELECT id, title, available_copies FROM books WHERE id = ANY($1) ORDER BY id FOR UPDATE`, req.BookIDs)
	if err != nil {
		return nil, fmt.Errorf("postgres: borrow: %w", err)
	}
	for rows.Next() {
		var (
			id int64
			s  shelf
		)
		if err := rows.Scan(&id, &s.title, &s.available); err != nil {
			rows.Close()
			return nil, fmt.Errorf("postgres: borrow: %w", err)
		}
		books[id] = s
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: borrow: %w", err)
	}
	for _, id := range req.BookIDs {
		if _, ok := books[id]; !ok {
			return nil, library.Errorf(library.ENOTFOUND, "Book %d not found", id)
		}
	}
	unavailable := []int64{}
	for _, id := range req.BookIDs {
		if books[id].available == 0 {
			unavailable = append(unavailable, id)
		}
	}
	if len(unavailable) > 0 {
		// Returning an error rolls the transaction back.
		names := make([]string, len(unavailable))
		for i, id := range unavailable {
			names[i] = fmt.Sprintf("book %d (%s)", id, books[id].title)
		}
		e := library.Errorf(library.EUNAVAILABLE, "No copy left of %s", strings.Join(names, ", "))
		e.Detail = map[string]any{"unavailable_book_ids": unavailable}
		return nil, e
	}
	// The rows are locked: the condition holds, and is there as a guard.
	tag, err := tx.Exec(ctx, `UPDATE books SET available_copies = available_copies - 1 WHERE id = ANY($1) AND available_copies > 0`, req.BookIDs)
	if err != nil {
		return nil, fmt.Errorf("postgres: borrow: %w", err)
	}
	if tag.RowsAffected() != int64(len(req.BookIDs)) {
		return nil, fmt.Errorf("postgres: borrow: took %d copies of %d locked books", tag.RowsAffected(), len(req.BookIDs))
	}

	name := strings.TrimSpace(req.BorrowerName)
	if name == "" {
		name = m.Name
	}
	now := storedTime(time.Now())
	due := now.AddDate(0, 0, req.LoanDays())
	ids := make(map[int64]int64, len(req.BookIDs)) // book id → borrow id
	rows, err = tx.Query(ctx, `
INSERT INTO borrows (book_id, member_id, borrower_name, borrow_date, due_date, idempotency_key)
SELECT book_id, $2, $3, $4, $5, $6 FROM unnest($1::bigint[]) WITH ORDINALITY AS r (book_id, n) ORDER BY n
RETURNING book_id, id`, req.BookIDs, m.ID, name, now, due, key)
	if err != nil {
		return nil, fmt.Errorf("postgres: borrow: %w", err)
	}
	for rows.Next() {
		var book, id int64
		if err := rows.Scan(&book, &id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("postgres: borrow: %w", err)
		}
		ids[book] = id
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: borrow: %w", err)
	}
	records := make([]library.BorrowRecord, 0, len(req.BookIDs))
	for _, id := range req.BookIDs {
		records = append(records, library.BorrowRecord{
			ID:            ids[id],
			BookID:        id,
			BookTitle:     books[id].title,
			MemberID:      m.ID,
			BorrowerEmail: m.Email,
			BorrowerName:  name,
			BorrowDate:    now,
			DueDate:       due,
		})
	}
	return records, nil
}

// FindBorrows returns a page of a member's borrow records, newest first,
// and how many there are in all, from one statement (see readPage), never
// from the cache: a member reads their loans right after changing them. Ids
// grow in the order the database assigned them, which every replica
// agrees on, unlike their clocks.
func (db *DB) FindBorrows(ctx context.Context, f library.BorrowFilter) ([]library.BorrowRecord, int, error) {
	limit, offset := library.ClampPage(f.Limit, f.Offset, library.DefaultBorrowPageSize, library.MaxBorrowPageSize)
	records, total, _, err := readPage(ctx, db.pool,
		`SELECT '', (SELECT count(*) FROM borrows WHERE member_id = $1), `+borrowColumns+borrowFrom+
			` WHERE b.member_id = $1 ORDER BY b.id DESC LIMIT $2 OFFSET $3`,
		`SELECT '', count(*) FROM borrows WHERE member_id = $1`,
		[]any{f.MemberID, limit, offset}, []any{f.MemberID}, 0, offset, scanBorrow)
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: find borrows: %w", err)
	}
	return records, total, nil
}

// ReturnBorrow marks a borrow returned and puts its copy back on the shelf,
// in one transaction.
func (db *DB) ReturnBorrow(ctx context.Context, memberID, borrowID int64) (library.BorrowRecord, error) {
	var r library.BorrowRecord
	err := db.inTxTouching(ctx, touchesBooks, func(tx pgx.Tx) error {
		var err error
		r, err = returnIn(ctx, tx, memberID, borrowID)
		return err
	})
	if err != nil {
		return library.BorrowRecord{}, err
	}
	return r, nil
}

// returnIn marks a borrow returned inside tx. The member's row is locked
// first, as a borrow locks it, then the borrow's, so of two returns of one
// borrow the second waits for the first and then finds it returned, and
// two returns of one member forget its oldest records one after the other.
func returnIn(ctx context.Context, tx querier, memberID, borrowID int64) (library.BorrowRecord, error) {
	if err := lockMember(ctx, tx, memberID); err != nil {
		return library.BorrowRecord{}, err
	}
	r, err := scanBorrow(tx.QueryRow(ctx, `SELECT `+borrowColumns+borrowFrom+` WHERE b.id = $1 FOR UPDATE OF b`, borrowID))
	if errors.Is(err, pgx.ErrNoRows) {
		return library.BorrowRecord{}, library.Errorf(library.ENOTFOUND, "Borrow %d not found", borrowID)
	} else if err != nil {
		return library.BorrowRecord{}, fmt.Errorf("postgres: find borrow %d: %w", borrowID, err)
	}
	if r.MemberID != memberID {
		return library.BorrowRecord{}, library.Errorf(library.EFORBIDDEN, "Borrow %d belongs to another member", borrowID)
	}
	if r.Returned {
		return library.BorrowRecord{}, library.Errorf(library.ECONFLICT, "Borrow %d was already returned", borrowID)
	}
	now := storedTime(time.Now())
	if _, err := tx.Exec(ctx, `UPDATE borrows SET returned_at = $1 WHERE id = $2`, now, borrowID); err != nil {
		return library.BorrowRecord{}, fmt.Errorf("postgres: return borrow %d: %w", borrowID, err)
	}
	if _, err := tx.Exec(ctx, `UPDATE books SET available_copies = available_copies + 1 WHERE id = $1`, r.BookID); err != nil {
		return library.BorrowRecord{}, fmt.Errorf("postgres: return borrow %d: %w", borrowID, err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM borrows WHERE member_id = $1 AND returned_at IS NOT NULL AND id < (
		SELECT id FROM borrows WHERE member_id = $1 AND returned_at IS NOT NULL ORDER BY id DESC LIMIT 1 OFFSET $2)`,
		memberID, library.MaxReturnedBorrows-1); err != nil {
		return library.BorrowRecord{}, fmt.Errorf("postgres: forget old returned borrows: %w", err)
	}
	r.Returned, r.ReturnDate = true, &now
	return r, nil
}

// BorrowExists reports whether a borrow record with the id exists, returned
// or not.
func (db *DB) BorrowExists(ctx context.Context, id int64) (bool, error) {
	var exists bool
	if err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM borrows WHERE id = $1)`, id).Scan(&exists); err != nil {
		return false, fmt.Errorf("postgres: borrow exists: %w", err)
	}
	return exists, nil
}

// lockMember locks a member's row until the transaction ends: what one
// member's writes take first, in this order, so they never deadlock.
func lockMember(ctx context.Context, tx querier, memberID int64) error {
	if _, err := tx.Exec(ctx, `SELECT 1 FROM members WHERE id = $1 FOR UPDATE`, memberID); err != nil {
		return fmt.Errorf("postgres: lock member %d: %w", memberID, err)
	}
	return nil
}

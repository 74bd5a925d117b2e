package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

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

// borrowSelect reads the columns scanBorrow expects; callers add a WHERE.
const borrowSelect = `SELECT ` + borrowColumns + borrowFrom

// scanBorrow reads one row of borrowColumns, after the columns that lead
// points to, if any (a page's total).
func scanBorrow(row interface{ Scan(...any) error }, lead ...any) (library.BorrowRecord, error) {
	var (
		r                 library.BorrowRecord
		borrowed, due     string
		returned          sql.NullString
		errBorrow, errDue error
		returnedAt        time.Time
		errReturned       error
	)
	if err := row.Scan(append(lead, &r.ID, &r.BookID, &r.BookTitle, &r.MemberID, &r.BorrowerEmail, &r.BorrowerName,
		&borrowed, &due, &returned)...); err != nil {
		return library.BorrowRecord{}, err
	}
	r.BorrowDate, errBorrow = parseTime(borrowed)
	r.DueDate, errDue = parseTime(due)
	if returned.Valid {
		returnedAt, errReturned = parseTime(returned.String)
		r.Returned, r.ReturnDate = true, &returnedAt
	}
	if err := errors.Join(errBorrow, errDue, errReturned); err != nil {
		return library.BorrowRecord{}, err
	}
	return r, nil
}

// findBorrow looks a borrow record up on q, a pool or a transaction.
func findBorrow(ctx context.Context, q querier, id int64) (library.BorrowRecord, error) {
	r, err := scanBorrow(q.QueryRowContext(ctx, borrowByIDSQL, id))
	if errors.Is(err, sql.ErrNoRows) {
		return library.BorrowRecord{}, library.Errorf(library.ENOTFOUND, "Borrow %d not found", id)
	} else if err != nil {
		return library.BorrowRecord{}, fmt.Errorf("sqlite: find borrow %d: %w", id, err)
	}
	return r, nil
}

// validateBorrow checks a request before any lock is taken and returns the
// loan length in days.
func validateBorrow(req library.BorrowRequest) (int, error) {
	if err := req.Validate(); err != nil {
		return 0, err
	}
	return req.LoanDays(), nil
}

// Borrow lends one copy of every requested book in one IMMEDIATE
// transaction, or none. Each copy is taken with a conditional decrement, so
// two processes can never both take the last one: the second sees zero rows
// updated and the whole request is rolled back as EUNAVAILABLE.
func (db *DB) Borrow(ctx context.Context, req library.BorrowRequest) ([]library.BorrowRecord, error) {
	days, err := validateBorrow(req)
	if err != nil {
		return nil, err
	}
	var records []library.BorrowRecord
	err = db.inTx(ctx, func(tx querier) error {
		var err error
		records, err = borrowIn(ctx, tx, req, days, sql.NullString{})
		return err
	})
	if err != nil {
		return nil, err
	}
	return records, nil
}

// borrowIn lends the copies inside tx. key is the idempotency key of the
// request that asked, written on every record it makes, so that the
// end-of-run check can tell a key applied twice from two requests.
func borrowIn(ctx context.Context, tx querier, req library.BorrowRequest, days int, key sql.NullString) ([]library.BorrowRecord, error) {
	var records []library.BorrowRecord
	err := func() error {
		m, err := findMember(ctx, tx, `id = ?`, req.MemberID)
		if errors.Is(err, sql.ErrNoRows) {
			return library.Errorf(library.ENOTFOUND, "Member %d not found", req.MemberID)
		} else if err != nil {
			return err
		}

		var active int
		if err := tx.QueryRowContext(ctx, activeLoansSQL, m.ID).Scan(&active); err != nil {
			return fmt.Errorf("sqlite: borrow: count loans: %w", err)
		}
		if err := library.CheckLoans(active, len(req.BookIDs)); err != nil {
			return err
		}

		titles := make(map[int64]string, len(req.BookIDs))
		for _, id := range req.BookIDs {
			var title string
			err := tx.QueryRowContext(ctx, bookTitleSQL, id).Scan(&title)
			if errors.Is(err, sql.ErrNoRows) {
				return library.Errorf(library.ENOTFOUND, "Book %d not found", id)
			} else if err != nil {
				return fmt.Errorf("sqlite: borrow: %w", err)
			}
			titles[id] = title
		}

		unavailable := []int64{}
		for _, id := range req.BookIDs {
			res, err := tx.ExecContext(ctx, takeCopySQL, id)
			if err != nil {
				return fmt.Errorf("sqlite: borrow: %w", err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("sqlite: borrow: %w", err)
			}
			if n == 0 {
				unavailable = append(unavailable, id)
			}
		}
		if len(unavailable) > 0 {
			// Returning an error rolls back the decrements already made.
			names := make([]string, len(unavailable))
			for i, id := range unavailable {
				names[i] = fmt.Sprintf("book %d (%s)", id, titles[id])
			}
			e := library.Errorf(library.EUNAVAILABLE, "No copy left of %s", strings.Join(names, ", "))
			e.Detail = map[string]any{"unavailable_book_ids": unavailable}
			return e
		}

		name := strings.TrimSpace(req.BorrowerName)
		if name == "" {
			name = m.Name
		}
		now := time.Now().UTC()
		due := now.AddDate(0, 0, days)
		for _, id := range req.BookIDs {
			res, err := tx.ExecContext(ctx, insertBorrowSQL, id, m.ID, name, formatTime(now), formatTime(due), key)
			if err != nil {
				return fmt.Errorf("sqlite: borrow: %w", err)
			}
			rid, err := res.LastInsertId()
			if err != nil {
				return fmt.Errorf("sqlite: borrow: %w", err)
			}
			records = append(records, library.BorrowRecord{
				ID:            rid,
				BookID:        id,
				BookTitle:     titles[id],
				MemberID:      m.ID,
				BorrowerEmail: m.Email,
				BorrowerName:  name,
				BorrowDate:    now,
				DueDate:       due,
			})
		}
		return nil
	}()
	if err != nil {
		return nil, err
	}
	return records, nil
}

// FindBorrows returns a page of a member's borrow records, newest first,
// and how many there are in all, from one snapshot (see readPage). Ids grow
// in commit order, which every process agrees on, unlike their clocks. A
// member has far fewer records than a page holds, as a rule, so the page
// grows as it fills.
func (db *DB) FindBorrows(ctx context.Context, f library.BorrowFilter) ([]library.BorrowRecord, int, error) {
	limit, offset := library.ClampPage(f.Limit, f.Offset, library.DefaultBorrowPageSize, library.MaxBorrowPageSize)
	records, total, err := readPage(ctx, db.stmts.borrowPage, db.stmts.borrowCount,
		[]any{f.MemberID, f.MemberID, limit, offset}, []any{f.MemberID}, 0, offset, scanBorrow)
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: find borrows: %w", err)
	}
	return records, total, nil
}

// ReturnBorrow marks a borrow returned and puts its copy back on the shelf,
// in one transaction.
func (db *DB) ReturnBorrow(ctx context.Context, memberID, borrowID int64) (library.BorrowRecord, error) {
	var r library.BorrowRecord
	err := db.inTx(ctx, func(tx querier) error {
		var err error
		r, err = returnIn(ctx, tx, memberID, borrowID)
		return err
	})
	if err != nil {
		return library.BorrowRecord{}, err
	}
	return r, nil
}

// returnIn marks a borrow returned inside tx.
func returnIn(ctx context.Context, tx querier, memberID, borrowID int64) (library.BorrowRecord, error) {
	var r library.BorrowRecord
	err := func() error {
		var err error
		if r, err = findBorrow(ctx, tx, borrowID); err != nil {
			return err
		}
		if r.MemberID != memberID {
			return library.Errorf(library.EFORBIDDEN, "Borrow %d belongs to another member", borrowID)
		}
		if r.Returned {
			return library.Errorf(library.ECONFLICT, "Borrow %d was already returned", borrowID)
		}
		now := time.Now().UTC()
		if _, err := tx.ExecContext(ctx, markReturnedSQL, formatTime(now), borrowID); err != nil {
			return fmt.Errorf("sqlite: return borrow %d: %w", borrowID, err)
		}
		if _, err := tx.ExecContext(ctx, putCopyBackSQL, r.BookID); err != nil {
			return fmt.Errorf("sqlite: return borrow %d: %w", borrowID, err)
		}
		if _, err := tx.ExecContext(ctx, pruneReturnedSQL, memberID, memberID, library.MaxReturnedBorrows-1); err != nil {
			return fmt.Errorf("sqlite: forget old returned borrows: %w", err)
		}
		r.Returned, r.ReturnDate = true, &now
		return nil
	}()
	if err != nil {
		return library.BorrowRecord{}, err
	}
	return r, nil
}

// BorrowExists reports whether a borrow record with the id exists, returned
// or not.
func (db *DB) BorrowExists(ctx context.Context, id int64) (bool, error) {
	var exists bool
	if err := db.readQ().QueryRowContext(ctx, borrowExistsSQL, id).Scan(&exists); err != nil {
		return false, fmt.Errorf("sqlite: borrow exists: %w", err)
	}
	return exists, nil
}

package storetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/statelab/statelab/internal/library"
)

func ptr[T any](v T) *T { return &v }

func testFindBooks(t *testing.T, be Backend) {
	ctx := context.Background()
	db := be.fresh(t)
	// Every book of this test has the author "Qx ..." so the seed catalog,
	// whatever it holds, never matches the filters below.
	for _, b := range []library.Book{
		{Title: "The Zyzzyva Papers", Author: "Qx Ada", ISBN: "9990000000001", Copies: 2},
		{Title: "zyzzyva returns", Author: "Qx Bea", ISBN: "9990000000002", Copies: 0},
		{Title: "100% Pure_Go", Author: "Qx Cid", ISBN: "9990000000003", Copies: 1},
		{Title: "1000 Pure Go", Author: "Qx Cid", ISBN: "9990000000004", Copies: 1},
	} {
		if _, err := db.CreateBook(ctx, b); err != nil {
			t.Fatalf("CreateBook: %v", err)
		}
	}

	tests := []struct {
		name   string
		filter library.BookFilter
		titles []string
		total  int
	}{
		{"query matches title case-insensitively", library.BookFilter{Query: "ZYZZYVA", Author: "qx"},
			[]string{"The Zyzzyva Papers", "zyzzyva returns"}, 2},
		{"query matches author", library.BookFilter{Query: "qx bea"}, []string{"zyzzyva returns"}, 1},
		{"query matches isbn", library.BookFilter{Query: "9990000000003"}, []string{"100% Pure_Go"}, 1},
		{"percent is literal", library.BookFilter{Query: "0%", Author: "Qx"}, []string{"100% Pure_Go"}, 1},
		{"underscore is literal", library.BookFilter{Query: "e_G", Author: "Qx"}, []string{"100% Pure_Go"}, 1},
		{"author filter", library.BookFilter{Author: "qx cid"}, []string{"100% Pure_Go", "1000 Pure Go"}, 2},
		{"available only", library.BookFilter{Query: "zyzzyva", Available: ptr(true)}, []string{"The Zyzzyva Papers"}, 1},
		{"unavailable only", library.BookFilter{Query: "zyzzyva", Available: ptr(false)}, []string{"zyzzyva returns"}, 1},
		{"limit", library.BookFilter{Author: "Qx", Limit: 1}, []string{"The Zyzzyva Papers"}, 4},
		{"offset", library.BookFilter{Author: "Qx", Limit: 2, Offset: 2}, []string{"100% Pure_Go", "1000 Pure Go"}, 4},
		{"offset past the end", library.BookFilter{Author: "Qx", Offset: 10}, []string{}, 4},
		{"no match", library.BookFilter{Query: "no such book anywhere"}, []string{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			books, total, err := db.FindBooks(ctx, tt.filter)
			if err != nil {
				t.Fatalf("FindBooks: %v", err)
			}
			titles := []string{}
			for _, b := range books {
				titles = append(titles, b.Title)
				if b.Available != (b.AvailableCopies > 0) {
					t.Errorf("book %d: Available %v with %d copies on the shelf", b.ID, b.Available, b.AvailableCopies)
				}
			}
			if fmt.Sprint(titles) != fmt.Sprint(tt.titles) {
				t.Errorf("titles: got %q, want %q", titles, tt.titles)
			}
			if total != tt.total {
				t.Errorf("total: got %d, want %d", total, tt.total)
			}
		})
	}
}

func testFindBooks_Limit(t *testing.T, be Backend) {
	ctx := context.Background()
	db := be.fresh(t)
	for i := range 105 {
		if _, err := db.CreateBook(ctx, library.Book{Title: fmt.Sprintf("Page %03d", i), Author: "Pager", Copies: 1}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		limit, want int
	}{
		{0, 20},
		{-5, 20},
		{7, 7},
		{100, 100},
		{1000, 100},
	}
	for _, tt := range tests {
		books, total, err := db.FindBooks(ctx, library.BookFilter{Author: "Pager", Limit: tt.limit})
		if err != nil {
			t.Fatal(err)
		}
		if len(books) != tt.want || total != 105 {
			t.Errorf("Limit %d: got %d books of %d, want %d of 105", tt.limit, len(books), total, tt.want)
		}
	}
}

func testFindBookByID(t *testing.T, be Backend) {
	ctx := context.Background()
	db := be.fresh(t)
	want := createBook(t, db, "Findable", 3)

	tests := []struct {
		name string
		id   int64
		code string
	}{
		{"exists", want.ID, ""},
		{"missing", want.ID + 1000, library.ENOTFOUND},
		{"zero", 0, library.ENOTFOUND},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := db.FindBookByID(ctx, tt.id)
			checkCode(t, err, tt.code)
			if err == nil && got != want {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

func testCreateBook(t *testing.T, be Backend) {
	ctx := context.Background()
	db := be.fresh(t)
	if _, err := db.CreateBook(ctx, library.Book{Title: "Taken", Author: "A", ISBN: "9991111111111", Copies: 1}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		book library.Book
		code string
	}{
		{"valid", library.Book{Title: "Dune", Author: "Frank Herbert", ISBN: "9994444444444", Year: 1965, Copies: 4}, ""},
		{"no isbn", library.Book{Title: "Untitled notes", Author: "Anon", Copies: 1}, ""},
		{"another without isbn", library.Book{Title: "More notes", Author: "Anon", Copies: 1}, ""},
		{"zero copies", library.Book{Title: "Lost", Author: "Anon", Copies: 0}, ""},
		{"max copies and year", library.Book{Title: "Big", Author: "Anon", Copies: 1000, Year: 3000}, ""},
		{"empty title", library.Book{Title: "  ", Author: "A", Copies: 1}, library.EINVALID},
		{"empty author", library.Book{Title: "T", Copies: 1}, library.EINVALID},
		{"negative copies", library.Book{Title: "T", Author: "A", Copies: -1}, library.EINVALID},
		{"too many copies", library.Book{Title: "T", Author: "A", Copies: 1001}, library.EINVALID},
		{"negative year", library.Book{Title: "T", Author: "A", Year: -1}, library.EINVALID},
		{"year too late", library.Book{Title: "T", Author: "A", Year: 3001}, library.EINVALID},
		{"duplicate isbn", library.Book{Title: "T", Author: "A", ISBN: "9991111111111"}, library.ECONFLICT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := db.CreateBook(ctx, tt.book)
			checkCode(t, err, tt.code)
			if err != nil {
				return
			}
			if got.ID == 0 || got.AvailableCopies != tt.book.Copies || got.Available != (tt.book.Copies > 0) {
				t.Errorf("got %+v, want an id and all %d copies available", got, tt.book.Copies)
			}
			stored, err := db.FindBookByID(ctx, got.ID)
			if err != nil || stored != got {
				t.Errorf("stored: got %+v, %v, want %+v", stored, err, got)
			}
		})
	}
	checkConsistent(t, db)
}

func testUpdateBook(t *testing.T, be Backend) {
	ctx := context.Background()
	db := be.fresh(t)
	alice := memberID(t, db, "alice@example.com")
	other, err := db.CreateBook(ctx, library.Book{Title: "Other", Author: "A", ISBN: "9992222222222", Copies: 1})
	if err != nil {
		t.Fatal(err)
	}
	book, err := db.CreateBook(ctx, library.Book{Title: "Old", Author: "A", ISBN: "9993333333333", Year: 2000, Copies: 3})
	if err != nil {
		t.Fatal(err)
	}
	// Two of its three copies are lent out.
	for range 2 {
		if _, err := db.Borrow(ctx, library.BorrowRequest{MemberID: alice, BookIDs: []int64{book.ID}}); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		name   string
		id     int64
		update library.BookUpdate
		code   string
		want   library.Book // checked when code is ""
	}{
		{"title and year", book.ID, library.BookUpdate{Title: ptr("New"), Year: ptr(2001)}, "",
			library.Book{Title: "New", Author: "A", ISBN: "9993333333333", Year: 2001, Copies: 3, AvailableCopies: 1}},
		{"more copies", book.ID, library.BookUpdate{Copies: ptr(5)}, "",
			library.Book{Title: "New", Author: "A", ISBN: "9993333333333", Year: 2001, Copies: 5, AvailableCopies: 3}},
		{"down to the copies lent", book.ID, library.BookUpdate{Copies: ptr(2)}, "",
			library.Book{Title: "New", Author: "A", ISBN: "9993333333333", Year: 2001, Copies: 2, AvailableCopies: 0}},
		{"below the copies lent", book.ID, library.BookUpdate{Copies: ptr(1)}, library.ECONFLICT, library.Book{}},
		{"isbn of another book", book.ID, library.BookUpdate{ISBN: ptr(other.ISBN)}, library.ECONFLICT, library.Book{}},
		{"same isbn again", book.ID, library.BookUpdate{ISBN: ptr("9993333333333")}, "",
			library.Book{Title: "New", Author: "A", ISBN: "9993333333333", Year: 2001, Copies: 2, AvailableCopies: 0}},
		{"empty title", book.ID, library.BookUpdate{Title: ptr("")}, library.EINVALID, library.Book{}},
		{"negative copies", book.ID, library.BookUpdate{Copies: ptr(-1)}, library.EINVALID, library.Book{}},
		{"bad year", book.ID, library.BookUpdate{Year: ptr(4000)}, library.EINVALID, library.Book{}},
		{"missing book", book.ID + 1000, library.BookUpdate{Title: ptr("X")}, library.ENOTFOUND, library.Book{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := db.FindBookByID(ctx, book.ID)
			got, err := db.UpdateBook(ctx, tt.id, tt.update)
			checkCode(t, err, tt.code)
			if err != nil {
				// A refused update changes nothing.
				if after, _ := db.FindBookByID(ctx, book.ID); after != before {
					t.Errorf("after a refused update: got %+v, want %+v", after, before)
				}
				return
			}
			tt.want.ID, tt.want.Available = book.ID, tt.want.AvailableCopies > 0
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if stored, _ := db.FindBookByID(ctx, book.ID); stored != tt.want {
				t.Errorf("stored: got %+v, want %+v", stored, tt.want)
			}
		})
	}
	checkConsistent(t, db)
}

func testDeleteBook(t *testing.T, be Backend) {
	ctx := context.Background()
	db := be.fresh(t)
	alice := memberID(t, db, "alice@example.com")
	book := createBook(t, db, "Doomed", 1)
	recs, err := db.Borrow(ctx, library.BorrowRequest{MemberID: alice, BookIDs: []int64{book.ID}})
	if err != nil {
		t.Fatal(err)
	}

	checkCode(t, db.DeleteBook(ctx, book.ID), library.ECONFLICT)
	checkCode(t, db.DeleteBook(ctx, book.ID+1000), library.ENOTFOUND)

	if _, err := db.ReturnBorrow(ctx, alice, recs[0].ID); err != nil {
		t.Fatal(err)
	}
	checkCode(t, db.DeleteBook(ctx, book.ID), "")
	_, err = db.FindBookByID(ctx, book.ID)
	checkCode(t, err, library.ENOTFOUND)
	checkCode(t, db.DeleteBook(ctx, book.ID), library.ENOTFOUND)
	// The returned borrow went with its book.
	if ok, err := db.BorrowExists(ctx, recs[0].ID); err != nil || ok {
		t.Errorf("BorrowExists after delete: got %v, %v, want false, nil", ok, err)
	}
	if got, _, err := db.FindBorrows(ctx, library.BorrowFilter{MemberID: alice}); err != nil || len(got) != 0 {
		t.Errorf("FindBorrows after delete: got %d, %v, want 0, nil", len(got), err)
	}
	// A new book does not take the deleted one's id.
	if b := createBook(t, db, "Next", 1); b.ID == book.ID {
		t.Errorf("new book id: got %d, want a fresh id", b.ID)
	}
	checkConsistent(t, db)
}

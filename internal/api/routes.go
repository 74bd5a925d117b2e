package api

import "net/http"

// Routes of every server, as gorilla/mux templates: the API's contract.
// internal/client builds its requests from them, and the metrics label each
// request with its template. Each server adds its sign-in routes (and the
// stateful one its cart) under /api/auth and /api/cart.
const (
	HealthRoute     = "/api/health"
	ReadyRoute      = "/api/ready"
	MetricsRoute    = "/metrics"
	MeRoute         = "/api/me"
	BooksRoute      = "/api/books"
	BookRoute       = "/api/books/{id}"
	BorrowBookRoute = "/api/books/{id}/borrow"
	BorrowsRoute    = "/api/borrows"
	ReturnRoute     = "/api/borrows/{id}/return"
)

// Prefix begins every route of the Library API (MetricsRoute is not one:
// it is Prometheus's).
const Prefix = "/api/"

// HandleLibrary mounts the library's resource routes, each behind
// authenticate: the one place where the two servers differ. authenticate
// must put the request's member in its context with
// library.NewContextWithMember, or answer the request itself.
//
// Together with the routes a server adds through Handle, this is the whole
// API at a glance. The POSTs that change the library are written as a
// Change behind write, so each one accepts an Idempotency-Key.
func (a *API) HandleLibrary(authenticate func(http.Handler) http.Handler) {
	s, l := a.cfg.Store, a.cfg.Logger
	a.Handle("GET", MeRoute, authenticate(handleMe(s, a.cfg.Replica, l)))

	a.Handle("GET", BooksRoute, authenticate(handleListBooks(s, l)))
	a.Handle("POST", BooksRoute, authenticate(a.write(createBook)))
	a.Handle("GET", BookRoute, authenticate(handleGetBook(s, l)))
	a.Handle("PUT", BookRoute, authenticate(handleUpdateBook(s, l)))
	a.Handle("DELETE", BookRoute, authenticate(handleDeleteBook(s, l)))
	a.Handle("POST", BorrowBookRoute, authenticate(a.write(borrowBook)))

	a.Handle("GET", BorrowsRoute, authenticate(handleListBorrows(s, l)))
	a.Handle("POST", BorrowsRoute, authenticate(a.write(borrowBooks)))
	a.Handle("POST", ReturnRoute, authenticate(a.write(returnBorrow)))
}

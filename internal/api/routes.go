package api

import "net/http"

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
	a.Handle("GET", "/api/me", authenticate(handleMe(s, a.cfg.Replica, l)))

	a.Handle("GET", "/api/books", authenticate(handleListBooks(s, l)))
	a.Handle("POST", "/api/books", authenticate(a.write(createBook)))
	a.Handle("GET", "/api/books/{id}", authenticate(handleGetBook(s, l)))
	a.Handle("PUT", "/api/books/{id}", authenticate(handleUpdateBook(s, l)))
	a.Handle("DELETE", "/api/books/{id}", authenticate(handleDeleteBook(s, l)))
	a.Handle("POST", "/api/books/{id}/borrow", authenticate(a.write(borrowBook)))

	a.Handle("GET", "/api/borrows", authenticate(handleListBorrows(s, l)))
	a.Handle("POST", "/api/borrows", authenticate(a.write(borrowBooks)))
	a.Handle("POST", "/api/borrows/{id}/return", authenticate(a.write(returnBorrow)))
}

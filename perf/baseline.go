package perf

import (
	"encoding/json"
	"net/http"

	"github.com/statelab/statelab/internal/api"
	"github.com/statelab/statelab/internal/library"
)

// bareBook is the book the bare server answers with: the shape and size of
// a real answer to GET /api/books/{id}, so the bytes on the wire are alike.
var bareBook = library.Book{
	ID: 1, Title: "The Left Hand of Darkness", Author: "Ursula K. Le Guin", ISBN: "9780441478125",
	Year: 1969, Copies: 3, AvailableCopies: 3, Available: true,
}

// BareHandler returns the yardstick: a net/http handler that answers every request
// with the same JSON book, with nothing in between: no router, no metrics,
// no authentication, no database. What a strategy's server costs beyond it
// is the lab's request path.
func BareHandler(replica string) http.Handler {
	body, err := json.Marshal(api.Envelope{Success: true, Data: bareBook})
	if err != nil {
		panic(err) // a fixed value of our own types always marshals
	}
	body = append(body, '\n')
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/json; charset=utf-8")
		h.Set(api.ReplicaHeader, replica)
		_, _ = w.Write(body)
	})
}

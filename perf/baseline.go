package perf

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"time"

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

// ServeBaseline serves BareHandler on ln, as replica, until ctx ends, then
// shuts down, giving requests in flight up to 5 seconds. It is what the
// statelab baseline subcommand runs: the server statelab perf starts
// beside the strategies' and measures them against.
func ServeBaseline(ctx context.Context, ln net.Listener, replica string) error {
	srv := &http.Server{
		Handler:           BareHandler(replica),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, stop := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer stop()
	return srv.Shutdown(shutdownCtx)
}

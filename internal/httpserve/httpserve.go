// Package httpserve makes the lab's own HTTP servers (the runner's, each
// balancer's) with timeouts, so that a body trickled one byte every few
// seconds, or an idle keep-alive, cannot hold a connection for ever.
package httpserve

import (
	"net/http"
	"time"
)

// Timeouts bound how long a server of the lab's (the runner's, a
// balancer's) waits on a client. Without them a body trickled one byte every few seconds, or an
// idle keep-alive, holds a connection (and a goroutine) for ever.
type Timeouts struct {
	ReadHeader time.Duration // the request line and headers
	Read       time.Duration // the whole request, body included
	// Write bounds writing the answer. The feed is polled once a second
	// and answers at once, so a minute leaves a proxied request as long as
	// the replicas' own 30 s and the balancer's retry.
	Write time.Duration
	Idle  time.Duration // a keep-alive connection between requests
}

// Defaults returns the timeouts New uses for a zero field.
func Defaults() Timeouts {
	return Timeouts{ReadHeader: 5 * time.Second, Read: 30 * time.Second, Write: time.Minute, Idle: 2 * time.Minute}
}

// New returns an http.Server that serves h with t's timeouts, each zero
// field taken from Defaults.
func New(h http.Handler, t Timeouts) *http.Server {
	d := Defaults()
	for _, f := range []struct{ got, def *time.Duration }{{&t.ReadHeader, &d.ReadHeader}, {&t.Read, &d.Read}, {&t.Write, &d.Write}, {&t.Idle, &d.Idle}} {
		if *f.got <= 0 {
			*f.got = *f.def
		}
	}
	return &http.Server{Handler: h, ReadHeaderTimeout: t.ReadHeader, ReadTimeout: t.Read, WriteTimeout: t.Write, IdleTimeout: t.Idle}
}

// Package perf measures what a request costs with each strategy, in real
// processes on loopback, against a bare net/http server measured in the
// same run: the yardstick that says how much of a request's cost is the
// lab's own overhead and how much is the way its caller is identified.
//
// Run starts the bare server (statelab baseline) and one replica of each
// strategy from the statelab binary, on one shared SQLite file, with a
// private redis-server for the redis strategy. Where the operating system
// allows it, the servers run on one CPU and the load generator on another,
// so neither steals the other's time. For each target it signs in once,
// then drives a closed loop of keep-alive connections for a fixed time, in
// rounds that take turns, and counts what came back: answers per second,
// their latencies, and the server process's own CPU time per answer, read
// from the kernel's accounting (/proc/PID/stat) before and after.
//
// The load generator is built on valyala/fasthttp's client, which costs far
// less CPU per request than net/http's, so the bare server, not the load
// generator, is what runs out of CPU first. Each row says how busy its
// server's CPU was, so a run where the load generator was the limit shows
// itself.
package perf

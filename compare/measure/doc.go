// Package measure is what the runner reads off the lab's processes and
// works out from it: each replica's own /metrics (its sessions, what
// identifying a caller cost it), each replica's CPU time, the phases of the
// load between events, each replica's share of the requests after a scale
// event, and calibration's measurements of what one replica and the
// runner itself can carry. It knows the processes only by their
// addresses, pids and counters; the runner decides when to read them.
package measure

// Package supervisor runs the replica processes of one side of a
// comparison: real OS processes started from the statelab binary, scaled,
// restarted (a successor ready first, then the old process asked to stop:
// its standard input closed, and SIGTERM on Unix) and
// crashed with SIGKILL, each polled until it answers /api/ready. No replica
// outlives the process that supervises it.
package supervisor

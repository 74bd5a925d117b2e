// Package matrix is "statelab matrix": every way of keeping a sign-in
// (package strategy) against every fault (a restart, a crash, scaling, a
// restart of the session store...), measured on real processes in one
// command, as one table. Rows are strategies, columns are faults, and each
// cell is what the simulated users lost in a window that begins where its
// fault begins and ends where the next one begins. Beside each row, what the
// strategy costs on every request, measured in the same run.
//
// The matrix drives compare.Runner, the only thing in the lab that starts
// replicas: each run puts two strategies side by side through one scenario
// that plays every fault in turn, and the runner hands back its report and
// the users' counters at the start of every fault. The strategies run two at
// a time; every run plays the same scenario with the same users and seed.
package matrix

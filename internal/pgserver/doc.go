// Package pgserver runs a private, real PostgreSQL server: a fresh cluster
// made by initdb in a directory of its own, listening on 127.0.0.1 on a free
// port and on no unix socket, with password authentication (scram-sha-256)
// for one superuser whose random password never appears on a command line.
// The PostgreSQL store's tests use it, and the comparison runner can start
// one for a run the way it starts redis-server.
//
// When the caller runs as root (as CI does), initdb and postgres refuse to
// run; the cluster then belongs to, and the server runs as, the
// unprivileged user Debian's postgresql package creates, "postgres".
//
// No process outlives its caller: Stop ends the server and removes the
// cluster, and on Linux the kernel kills the server when the thread that
// started it ends (Pdeathsig); its own children follow their postmaster.
package pgserver

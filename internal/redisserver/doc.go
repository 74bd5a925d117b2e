// Package redisserver runs a private, real redis-server process: on
// 127.0.0.1, on a free port, in its own directory, without persistence, so
// that a restart loses every key, the way a session store without a disk
// does. The redis session store's tests use it, and the comparison runner
// can use it to restart the shared session store in the middle of a run.
//
// No process outlives its caller: Stop ends it, and on Linux the kernel
// kills it when the thread that started it ends (Pdeathsig).
package redisserver

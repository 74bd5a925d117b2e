package supervisor

// askToStop asks a replica to stop gracefully, the way it can hear on
// this OS: its standard input closes, which a replica started with
// -exit-with-stdin takes as a request to drain and exit, then stopSignal.
// Closing the pipe works on every OS, Windows included, where a child
// process cannot be sent SIGTERM (os.Process.Signal supports only Kill
// there) and a graceful stop would otherwise wait StopTimeout for
// nothing and end in a kill.
func askToStop(p *proc) {
	_ = p.stdin.Close() // reap closes it too; a second Close only says so
	stopSignal(p)
}

//go:build !unix

package supervisor

// stopSignal has no signal to send outside Unix: closing the standard
// input is the request to stop.
func stopSignal(*proc) {}

//go:build !unix

package store

// alive cannot tell outside Unix, so it says yes: nothing is swept.
func alive(int) bool { return true }

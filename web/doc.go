// Package web will hold the live dashboard of the comparison runner: static
// files embedded in the binary and the handlers that feed them the numbers
// the runner counted. It renders what compare hands it and knows no server.
package web

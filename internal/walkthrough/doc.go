// Package walkthrough is the classroom guide behind "statelab walkthrough":
// it starts real replica processes of both servers, walks a student through
// the lesson one HTTP exchange at a time, asks for a prediction before each
// exchange that carries the lesson, and shows what really happened.
//
// It prints everything as plain lines on an io.Writer and reads answers,
// line by line, from an io.Reader, so it works over a plain SSH terminal,
// projected in a classroom (Config.Auto) and in a test that compares its
// transcript with a golden file.
//
// Every outcome it reports (a verdict on a prediction, a table of which
// replica answered, the bytes and the time a request cost) is read from
// the responses it received, never written in advance: if the servers
// misbehave, the walkthrough says so.
package walkthrough

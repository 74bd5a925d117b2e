// Package web is the live dashboard of the comparison runner: an HTML page,
// its script and its style sheet, embedded in the binary so the lab works
// offline, with no CDN and no build step.
//
// The page renders what compare hands it and knows no server. It polls the
// runner's GET /api/feed once a second, computes per-second rates from the
// counted totals of consecutive samples, draws the two sides the feed names
// (two strategies of keeping a sign-in) side by side on the same scales,
// explains every event from each side's properties (where its sessions
// live), marks every event across both, and sends the instructor's buttons
// to POST /api/control/{action}. When the runner stops answering it says so
// and freezes the numbers; it never makes a number up.
package web

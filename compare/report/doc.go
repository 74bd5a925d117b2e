// Package report is what a run of the lab found, and how it is written:
// the data (each side's totals, phases, costs, balance windows, events and
// their losses, the series the feed sampled, the end-of-run consistency
// checks) and its forms — report.json, report.md, a self-contained
// report.html with inline SVG charts, and the terminal summary. It is data
// in, text out: the runner that counts the numbers assembles a Report, and
// nothing here measures anything.
package report

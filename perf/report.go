package perf

import (
	"cmp"
	"fmt"
	"io"
	"strings"
)

// WriteTable prints the report as a table people read, with what the
// columns mean and how the run was made.
func (r *Report) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "statelab perf: %d connections, %d round(s) of %s per row (after %s of warm-up), %s\n",
		r.Conns, r.Rounds, r.Duration, r.Warmup, r.Load)
	fmt.Fprintf(w, "%s; %d CPUs; %s; store %s; read cache %s", r.Pinning, r.CPUs, r.GoVersion, cmp.Or(r.Store, "sqlite"), map[bool]string{true: "on", false: "off (-no-read-cache)"}[r.ReadCache])
	if r.LoadAvg != "" {
		fmt.Fprintf(w, "; load average at the start %s", r.LoadAvg)
	}
	fmt.Fprintln(w)
	if busy := r.busyMachine(); busy != "" {
		fmt.Fprintln(w, busy)
	}
	fmt.Fprintln(w)
	// Names left, numbers right: text/tabwriter aligns every column alike.
	fmt.Fprintf(w, "%-14s %-24s %9s %7s %7s %7s %14s %10s %12s %9s %12s %6s\n",
		"strategy", "request", "req/s", "× bare", "p50 ms", "p99 ms", "server µs/req", "× bare CPU", "server busy", "redis µs", "load µs/req", "failed")
	for _, row := range r.Rows {
		req := "GET " + row.Target
		if row.Strategy == Bare {
			req = "any (one fixed book)"
		}
		redis := ""
		if row.StoreCPUMicros > 0 {
			redis = fmt.Sprintf("%.1f", row.StoreCPUMicros)
		}
		fmt.Fprintf(w, "%-14s %-24s %9s %7.2f %7.2f %7.2f %14.1f %10.2f %11.0f%% %9s %12.1f %6d\n",
			row.Strategy, req, thousands(row.PerSecond), row.Ratio, row.P50Ms, row.P99Ms, row.ServerCPUMicros,
			row.CPURatio, 100*row.ServerBusy, redis, row.LoadCPUMicros, row.Failed)
	}
	for _, row := range r.Rows {
		if row.Failed > 0 {
			fmt.Fprintf(w, "%s %s: %d failed; the first: %s\n", row.Strategy, row.Path, row.Failed, row.FirstFailure)
		}
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(w, "skipped %s\n", s)
	}
	fmt.Fprint(w, `
req/s: 200 answers per second, the median of the rounds; × bare: against the bare net/http server
in this same run; p50/p99: of every answer in every round, as the load generator timed it.
server µs/req: the server process's own CPU time (user + system, from /proc/PID/stat) per answer;
× bare CPU: the bare server's µs/req over this row's, what one CPU could answer, whoever was the limit;
server busy: the share of its CPU the server used (well under 100%: something else was the limit,
the load generator or other work on the machine); redis µs: redis-server's CPU time per answer, on
the server's CPU too; load µs/req: the load generator's. One replica per strategy, measured directly:
memory-sticky stands for memory and memory-hash too, the same replica behind other balancers.
`)
}

// busyMachine warns when other work kept the machine's CPUs busy as the
// run began: the load average over the last minute above the number of
// CPUs means processes were waiting for one, and every number here then
// counts some of that waiting.
func (r *Report) busyMachine() string {
	var one float64
	if _, err := fmt.Sscan(r.LoadAvg, &one); err != nil || one <= float64(r.CPUs) {
		return ""
	}
	return fmt.Sprintf("warning: the machine was busy with other work (load average %.1f on %d CPUs): req/s and latencies\n"+
		"count the wait for a CPU; server µs/req suffers least. Run again when the machine is quiet.", one, r.CPUs)
}

// thousands formats n with no decimals and commas between thousands.
func thousands(n float64) string {
	s := fmt.Sprintf("%.0f", n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

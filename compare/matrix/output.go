package matrix

import (
	"bytes"
	"cmp"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/statelab/statelab/compare/report"
)

// cellText is a cell as the terminal and matrix.md show it: the glyph, the
// failed requests per 1000, and the sign-ins lost when there were any.
func cellText(c *Cell) string {
	if c == nil {
		return "?"
	}
	if !c.Applies {
		return GlyphNA + " n/a"
	}
	s := c.Glyph() + " " + perMille(c.FailuresPer1000)
	if c.SessionsLost > 0 {
		s += fmt.Sprintf(" (%d)", c.SessionsLost)
	}
	return s
}

// claimsNote says how the matrix's claims are judged.
const claimsNote = "Each claim of the lesson, judged by what the runs measured (compare/report/claims.go holds the rules, the same as a run's report): a benefit holds when every stateless strategy shows it, a cost when every stateless strategy pays more than every stateful one; a strategy with +own-secrets, deployed wrong on purpose, is measured but judges nothing."

// perMille writes a rate per 1000 with as many digits as it deserves.
func perMille(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v < 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

// costColumns are the costs beside each row, in the terminal and matrix.md.
var costColumns = []struct {
	head, help string
	value      func(*Costs) string
}{
	{"req B", "median request size on the wire (request line, headers, body)", func(c *Costs) string { return fmt.Sprintf("%.0f", c.RequestBytesP50) }},
	{"B/journey", "median bytes one whole user journey sent, sign-ins it was forced into included (– no user finished a journey)", func(c *Costs) string {
		if c.Journeys == 0 {
			return "–"
		}
		return fmt.Sprintf("%.0f", c.JourneyBytesP50)
	}},
	{"identify µs", "median server time finding the caller, per request, from the replicas' statelab_identify_seconds (matrix.json also has the mean)", func(c *Costs) string { return fmt.Sprintf("%.1f", c.IdentifyUSP50) }},
	{"CPU µs/req", "replica CPU time (user+system, the kernel's account) per request the balancer handed them; + the session store's own", func(c *Costs) string {
		s := fmt.Sprintf("%.0f", c.CPUPerRequestUS)
		if c.StoreCPUSeconds > 0 {
			s += fmt.Sprintf("+%.0f", c.StoreCPUPerRequestUS)
		}
		return s
	}},
	{"read p50 ms", "authenticated reads (GET, 2xx), sign-ins left out", func(c *Costs) string { return fmt.Sprintf("%.1f", c.ReadLatencyMS.P50) }},
	{"read p99 ms", "", func(c *Costs) string { return fmt.Sprintf("%.1f", c.ReadLatencyMS.P99) }},
	{"revoked", "after logout or key revocation, is the old credential refused?", func(c *Costs) string { return c.Revocation.Verdict }},
}

// Network is how the runs' processes were connected, as a run's report
// has it (without the subnet each run drew for itself).
func (m *Matrix) Network() report.Network {
	return report.Network{Hosts: cmp.Or(m.Hosts, report.HostsLocal), Subnet: m.HostsSubnet, LatencyMS: m.LatencyMS, JitterMS: m.JitterMS}
}

// PrintTable writes the matrix for a terminal: one glyph and one number per
// cell, readable without colour, then the costs, then how to read them.
func (m *Matrix) PrintTable(w io.Writer) {
	fmt.Fprintf(w, "\nstatelab matrix: %d users and %d replicas per strategy, %s windows, seed %d; %s in all\n%s\n\n",
		m.Users, m.Replicas, seconds(m.WindowS), m.Seed, seconds(m.DurationS), m.Network())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "strategy")
	for _, f := range m.Faults {
		fmt.Fprintf(tw, "\t%s", f)
	}
	fmt.Fprintln(tw, "\t")
	for _, st := range m.Strategies {
		fmt.Fprint(tw, st)
		_, skipped := m.Skipped[st]
		for _, f := range m.Faults {
			if skipped {
				fmt.Fprint(tw, "\tskipped")
				continue
			}
			fmt.Fprintf(tw, "\t%s", cellText(m.Cells[st][f]))
		}
		fmt.Fprintln(tw, "\t")
	}
	tw.Flush()
	for _, st := range m.Strategies {
		if why, ok := m.Skipped[st]; ok {
			fmt.Fprintf(w, "%s was skipped: %s\n", st, why)
		}
	}
	fmt.Fprintf(w, "\n%s no request failed, nobody signed out   %s requests failed, nobody signed out   %s sign-ins lost   %s the fault cannot touch it   ? not measured\n",
		GlyphClean, GlyphFailures, GlyphLost, GlyphNA)
	fmt.Fprintln(w, "number: failed requests per 1000 in the window (any answer but 2xx or a 409 lost race, and no answer at all); (n): sessions lost in it")
	fmt.Fprintln(w)

	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "strategy\t")
	for _, c := range costColumns {
		fmt.Fprintf(tw, "%s\t", c.head)
	}
	fmt.Fprintln(tw)
	for _, st := range m.Strategies {
		c := m.Costs[st]
		if c == nil {
			continue
		}
		fmt.Fprintf(tw, "%s\t", st)
		for _, col := range costColumns {
			fmt.Fprintf(tw, "%s\t", col.value(c))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	for _, c := range costColumns {
		if c.help != "" {
			fmt.Fprintf(w, "  %-12s %s\n", c.head, c.help)
		}
	}
	if line := m.balanceLine(); line != "" {
		fmt.Fprintln(w)
		fmt.Fprintln(w, line)
	}
	if n := m.missing(); n > 0 {
		fmt.Fprintf(w, "\n%d cell(s) not measured (?): the run was interrupted or failed; the cells shown are complete\n", n)
	}
	if len(m.Claims) > 0 {
		fmt.Fprintln(w, "\nThe lesson's claims, judged by this matrix's numbers (the stateless rows against the stateful ones; +own-secrets rows are shown, not judged):")
		for _, c := range m.Claims {
			fmt.Fprintf(w, "  %-13s %s\n  %13s %s\n", c.Verdict, c.Claim, "", c.Why)
		}
	}
}

// balanceLine says how evenly each strategy's balancer shared the requests
// out after the scale-out: where sticky routing shows its price.
func (m *Matrix) balanceLine() string {
	var parts []string
	for _, st := range m.Strategies {
		c := m.Cells[st]["scale-out"]
		if c == nil || c.Balance == nil || len(c.Balance.Shares) == 0 {
			continue
		}
		// The replicas the scale-out added are the highest-numbered ones.
		ids := slices.SortedFunc(maps.Keys(c.Balance.Shares), func(a, b string) int { return cmp.Compare(slot(a), slot(b)) })
		var added []string
		for _, id := range ids[min(m.Replicas, len(ids)):] {
			added = append(added, fmt.Sprintf("%.0f%%", 100*c.Balance.Shares[id]))
		}
		parts = append(parts, fmt.Sprintf("%s %.2f (the new replicas took %s)", st, c.Balance.Imbalance, strings.Join(added, " and ")))
	}
	if len(parts) == 0 {
		return ""
	}
	return "after the scale-out, the busiest replica's share ÷ a fair share: " + strings.Join(parts, ", ")
}

// slot is the number at the end of a replica id ("memory-sticky-3": 3).
func slot(id string) int {
	n, _ := strconv.Atoi(id[strings.LastIndexByte(id, '-')+1:])
	return n
}

// missing counts the cells of strategies that ran but were not measured.
func (m *Matrix) missing() int {
	n := 0
	for _, st := range m.Strategies {
		if _, skipped := m.Skipped[st]; skipped {
			continue
		}
		for _, f := range m.Faults {
			if m.Cells[st][f] == nil {
				n++
			}
		}
	}
	return n
}

// Finished lists the cells that were measured, "strategy × fault", for a
// run that ended early.
func (m *Matrix) Finished() []string {
	var out []string
	for _, st := range m.Strategies {
		for _, f := range m.Faults {
			if m.Cells[st][f] != nil {
				out = append(out, st+" × "+f)
			}
		}
	}
	return out
}

// sentence ends s with a full stop, unless it ends with a question mark.
func sentence(s string) string {
	if strings.HasSuffix(s, "?") || strings.HasSuffix(s, ".") {
		return s
	}
	return s + "."
}

func seconds(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(100 * time.Millisecond).String()
}

// Write puts matrix.json, matrix.md and matrix.html in dir.
func (m *Matrix) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report dir: %w", err)
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "matrix.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	var md bytes.Buffer
	m.Markdown(&md)
	if err := os.WriteFile(filepath.Join(dir, "matrix.md"), md.Bytes(), 0o644); err != nil {
		return err
	}
	var page bytes.Buffer
	if err := m.HTML(&page); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "matrix.html"), page.Bytes(), 0o644)
}

// Markdown writes matrix.md: the table, the costs, how to read them, and
// every cell in detail.
func (m *Matrix) Markdown(w io.Writer) {
	fmt.Fprintf(w, "# statelab matrix\n\nStarted %s; %d users and %d replicas per strategy, one window of %s per fault after %s of sign-ins, seed %d; %s in all",
		m.StartedAt.Format(time.RFC3339), m.Users, m.Replicas, seconds(m.WindowS), seconds(m.WarmupS), m.Seed, seconds(m.DurationS))
	if m.Quick {
		fmt.Fprint(w, " (--quick)")
	}
	fmt.Fprintln(w, ".")
	fmt.Fprintln(w, "\nStore: "+cmp.Or(m.Store, "sqlite")+", read cache "+string(m.ReadCache.Mode())+". "+m.Network().String())
	if m.Interrupted {
		fmt.Fprintln(w, "\n**Interrupted**: the cells marked ? were not measured.")
	}
	fmt.Fprintln(w, "\nEach cell: "+GlyphClean+" no request failed and nobody was signed out; "+GlyphFailures+" requests failed but nobody was signed out; "+
		GlyphLost+" sign-ins were lost; "+GlyphNA+" the fault cannot touch the strategy. The number is the failed requests per 1000 in the fault's window "+
		"(any answer but a 2xx or a 409 lost race, and requests with no answer); in brackets, the sessions lost.")
	fmt.Fprintln(w)
	tableHead(w, "strategy", m.Faults, "---")
	for _, st := range m.Strategies {
		fmt.Fprintf(w, "| %s |", st)
		_, skipped := m.Skipped[st]
		for _, f := range m.Faults {
			if skipped {
				fmt.Fprint(w, " skipped |")
				continue
			}
			fmt.Fprintf(w, " %s |", cellText(m.Cells[st][f]))
		}
		fmt.Fprintln(w)
	}
	for _, st := range m.Strategies {
		if why, ok := m.Skipped[st]; ok {
			fmt.Fprintf(w, "\n**%s** was skipped: %s.\n", st, why)
		}
	}
	fmt.Fprintln(w, "\n## What each strategy pays, on every request")
	fmt.Fprintln(w)
	heads := make([]string, len(costColumns))
	for i, c := range costColumns {
		heads[i] = c.head
	}
	tableHead(w, "strategy", heads, "---:")
	for _, st := range m.Strategies {
		c := m.Costs[st]
		if c == nil {
			continue
		}
		fmt.Fprintf(w, "| %s |", st)
		for _, col := range costColumns {
			fmt.Fprintf(w, " %s |", col.value(c))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
	for _, c := range costColumns {
		if c.help != "" {
			fmt.Fprintf(w, "- **%s**: %s\n", c.head, sentence(c.help))
		}
	}
	if line := m.balanceLine(); line != "" {
		fmt.Fprintf(w, "\n%s.\n", strings.ToUpper(line[:1])+line[1:])
	}
	if len(m.Claims) > 0 {
		fmt.Fprintln(w, "\n## The lesson's claims, judged by this matrix")
		fmt.Fprintln(w)
		fmt.Fprintln(w, claimsNote)
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| claim | verdict | why |\n|---|---|---|")
		for _, c := range m.Claims {
			fmt.Fprintf(w, "| %s | **%s** | %s |\n", c.Claim, c.Verdict, c.Why)
		}
		fmt.Fprintln(w)
		tableHead(w, "claim", m.Strategies, "---")
		for _, c := range m.Claims {
			fmt.Fprintf(w, "| %s |", c.Claim)
			for _, st := range m.Strategies {
				fmt.Fprintf(w, " %s |", cmp.Or(c.Measured[st], "–"))
			}
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintln(w, "\n## Where each strategy keeps the sign-in, and what the revocation probe saw")
	fmt.Fprintln(w)
	for _, st := range m.Strategies {
		fmt.Fprintf(w, "- **%s**: %s.", st, m.About[st].Where)
		if c := m.Costs[st]; c != nil {
			fmt.Fprintf(w, " Revoked %s: %s; %s.", c.Revocation.Verdict, c.Revocation.How, c.Revocation.Saw)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "\n## The faults")
	fmt.Fprintln(w)
	for _, f := range m.Faults {
		fmt.Fprintf(w, "- **%s**: %s.\n", f, m.FaultsDo[f])
	}
	fmt.Fprintln(w, "\n## Every cell")
	fmt.Fprintln(w, "\n| strategy | fault | window (s) | requests | failed | ‰ | sessions lost | forced re-logins | cart items lost | 5xx | no answer |")
	fmt.Fprintln(w, "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, st := range m.Strategies {
		for _, f := range m.Faults {
			c := m.Cells[st][f]
			if c == nil {
				continue
			}
			fmt.Fprintf(w, "| %s | %s | %.1f–%.1f | %d | %d | %s | %d | %d | %d | %d | %d |\n",
				st, f, c.FromS, c.ToS, c.Requests, c.Failures, perMille(c.FailuresPer1000), c.SessionsLost, c.Relogins, c.CartItemsLost, c.Errors5xx, c.ConnErrors)
		}
	}
	fmt.Fprintln(w, "\n## The runs")
	fmt.Fprintln(w)
	for i, r := range m.Runs {
		fmt.Fprintf(w, "%d. %s, %.0f s, report `%s`", i+1, strings.Join(r.Sides, " + "), r.DurationS, r.Report)
		if r.Filler != "" {
			fmt.Fprintf(w, " (%s ran only to make a pair)", r.Filler)
		}
		if !r.Consistent {
			fmt.Fprint(w, "; **the database's consistency check failed**")
		}
		if r.Error != "" {
			fmt.Fprintf(w, "; error: %s", r.Error)
		}
		fmt.Fprintln(w)
	}
}

//go:embed matrix.html.tmpl
var pageTemplate string

var page = template.Must(template.New("matrix").Funcs(template.FuncMap{
	"cell":       func(c *Cell) string { return cellText(c) },
	"heat":       heat,
	"permille":   perMille,
	"seconds":    seconds,
	"glyphs":     func() []string { return []string{GlyphClean, GlyphFailures, GlyphLost, GlyphNA} },
	"claimsNote": func() string { return claimsNote },
}).Parse(pageTemplate))

// heat is a cell's class in the heat map: a step of a sequential palette
// that is safe for colour-blind readers (light to dark, blue for clean),
// always paired with the glyph.
func heat(c *Cell) string {
	switch {
	case c == nil:
		return "unmeasured"
	case !c.Applies:
		return "na"
	case c.Failures == 0 && c.Glyph() == GlyphClean:
		return "clean"
	case c.FailuresPer1000 < 1:
		return "h1"
	case c.FailuresPer1000 < 10:
		return "h2"
	case c.FailuresPer1000 < 100:
		return "h3"
	case c.FailuresPer1000 < 300:
		return "h4"
	}
	return "h5"
}

// HTML writes matrix.html: one page with no outside resources, the table as
// a heat map, the costs, and a sentence per row on where the state is kept.
func (m *Matrix) HTML(w io.Writer) error {
	return page.Execute(w, struct {
		*Matrix
		Columns  []struct{ Head, Help string }
		CostRows [][]string
	}{m, m.costHeads(), m.costCells()})
}

func (m *Matrix) costHeads() []struct{ Head, Help string } {
	out := make([]struct{ Head, Help string }, len(costColumns))
	for i, c := range costColumns {
		out[i].Head, out[i].Help = c.head, c.help
	}
	return out
}

// costCells are the costs table's rows: the strategy, then each column.
func (m *Matrix) costCells() [][]string {
	var rows [][]string
	for _, st := range m.Strategies {
		c := m.Costs[st]
		if c == nil {
			continue
		}
		row := []string{st}
		for _, col := range costColumns {
			row = append(row, col.value(c))
		}
		rows = append(rows, row)
	}
	return rows
}

// WriteLatest copies the matrix.html that Write left in dir to latest, the
// page a runner's dashboard serves at /matrix (LatestFile), and reports
// whether it did. Only a complete matrix is copied: an interrupted one
// must not replace the last whole one. An empty latest copies nothing.
func (m *Matrix) WriteLatest(dir, latest string) (bool, error) {
	if latest == "" || !m.Complete() {
		return false, nil
	}
	if err := copyFile(filepath.Join(dir, "matrix.html"), latest); err != nil {
		return false, fmt.Errorf("copy matrix.html to %s: %w", latest, err)
	}
	return true, nil
}

// copyFile copies the file at src to dst, making dst's directory. It
// writes a temporary file and renames it, so a dashboard reading dst never
// serves half a page.
func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// tableHead writes a markdown table's first two lines: the first column,
// then one column per head, each aligned by rule ("---" or "---:").
func tableHead(w io.Writer, first string, heads []string, rule string) {
	fmt.Fprintf(w, "| %s |", first)
	for _, h := range heads {
		fmt.Fprintf(w, " %s |", h)
	}
	fmt.Fprint(w, "\n|---|")
	for range heads {
		fmt.Fprint(w, rule+"|")
	}
	fmt.Fprintln(w)
}

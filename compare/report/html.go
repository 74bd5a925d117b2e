package report

import (
	"fmt"
	"html"
	"html/template"
	"io"
	"math"
	"strings"
	"time"

	"github.com/statelab/statelab/compare/scenario"
)

// The report.html charts, in the order the page shows them. Each is one
// inline <svg>, so a page printed or mailed keeps them.
const (
	ChartRequests = "requests"
	ChartLosses   = "losses"
	ChartSessions = "sessions"
)

// htmlCharts says what each chart shows and why it moves: the caption the
// page prints under it.
var htmlCharts = []struct{ id, title, caption string }{
	{ChartRequests, "Successful requests per second",
		"Requests answered 2xx each second, counted by the simulated users of each side. It dips when a side's users are busy signing in again, or when their requests fail."},
	{ChartLosses, "Sessions lost per second, with the events",
		"Requests answered 401 while the user believed it was signed in, each second. It jumps when a replica that kept sessions in its memory goes away; the dashed lines are the scenario's events."},
	{ChartSessions, "Sessions held per replica",
		"Each stateful replica's own count of the sessions in its memory (light), and of those a request used in the last 10 s (dark). It falls to zero when the replica restarts, crashes or is removed; the idle rest were left behind by users who signed in again."},
}

// sideColors tell the columns apart: the Okabe-Ito blue and vermillion,
// the second also dashed, so a black-and-white print keeps them apart.
var sideColors = []struct{ color, dash string }{{"#0072B2", ""}, {"#D55E00", "6 3"}}

// htmlPage is what report.html's template fills in.
type htmlPage struct {
	*Report
	Cols    []SideReport
	Rows    [][]string // the totals table, label first
	Costs   [][]string // the costs table, label first
	Note    string     // where the costs come from
	Summary []string   // what the numbers say, one paragraph per side
	Charts  []htmlChart
	Losses  [][]string
	Checks  [][]string // name, verdict, detail
	Started string
	// ClaimsNote says how to read the claims table, whose rows are
	// rep.Claims.
	ClaimsNote string
	Parts      [][]string // the moving parts table, label first
	PartsNote  string
	// Observed is each side's observed request: its name and the line.
	Observed     [][]string
	ObserverNote string
	// Load and Phases are the capacity lesson: the load and the CPU limit
	// in sentences, and each side's phases; empty for a run with neither
	// an open-loop load nor a CPU limit.
	Load   []string
	Phases []htmlPhases
}

// htmlPhases is one side's phase table, the header first.
type htmlPhases struct {
	Name string
	Rows [][]string
}

type htmlChart struct {
	ID, Title, Caption string
	SVG                template.HTML
}

// writeHTML writes report.html: one self-contained page, with no link to
// anything outside it, that a teacher can open, print or hand out.
func (rep *Report) writeHTML(w io.Writer) error {
	p := htmlPage{Report: rep, Cols: rep.columns(), Started: rep.StartedAt.Format(time.RFC1123)}
	for _, row := range rows {
		r := []string{row.label}
		for _, c := range p.Cols {
			r = append(r, row.cell(c))
		}
		p.Rows = append(p.Rows, r)
	}
	for _, row := range costRows {
		r := []string{row.label}
		for _, c := range p.Cols {
			r = append(r, row.cell(c))
		}
		p.Costs = append(p.Costs, r)
	}
	p.Note = costsNote + " Identification times were " + rep.Conditions().describe() + "."
	for _, row := range partsRows() {
		r := []string{row.label}
		for _, c := range p.Cols {
			r = append(r, row.cell(c))
		}
		p.Parts = append(p.Parts, r)
	}
	p.ClaimsNote, p.PartsNote, p.ObserverNote = claimsNote, partsNote, observerNote
	for _, c := range p.Cols {
		line := "no authenticated read was answered 2xx"
		if c.Costs.Observed != nil {
			line = c.Costs.Observed.Line
		}
		p.Observed = append(p.Observed, []string{c.Name, line})
	}
	if rep.OpenLoop != nil || rep.ReplicaCPU != nil {
		var b strings.Builder
		rep.describeLoad(&b)
		p.Load = strings.Split(strings.TrimSpace(b.String()), "\n")
		for _, c := range p.Cols {
			p.Phases = append(p.Phases, htmlPhases{Name: c.Name, Rows: phaseRows(c, rep.ReplicaCPU)})
		}
	}
	for _, c := range p.Cols {
		p.Summary = append(p.Summary, fmt.Sprintf("%s: %s lost (%s with them), %s. What breaks it: %s.",
			c.Name, count64(c.SessionsLost, "session", "sessions"), count64(c.CartItemsLost, "cart item", "cart items"),
			count64(c.Relogins, "forced re-login", "forced re-logins"), c.Breaks))
	}
	end := rep.DurationS
	for _, ch := range htmlCharts {
		var svg string
		switch ch.id {
		case ChartRequests:
			svg = rep.rateChart(end, func(p SeriesPoint) float64 { return float64(p.OK) }, "requests/s")
		case ChartLosses:
			svg = rep.rateChart(end, func(p SeriesPoint) float64 { return float64(p.SessionsLost) }, "sessions/s")
		case ChartSessions:
			svg = rep.sessionsChart(end)
		}
		p.Charts = append(p.Charts, htmlChart{ID: ch.id, Title: ch.title, Caption: ch.caption, SVG: template.HTML(svg)})
	}
	for _, l := range rep.Losses {
		what := scenario.WordOf(l.Kind)
		if l.Kind == "start" {
			what = "from the start"
		}
		for _, name := range rep.SideOrder {
			sl := l.Sides[name]
			went := "–"
			if sl.InUseDropped != nil {
				went = fmt.Sprintf("%.0f / %.0f", *sl.InUseDropped, *sl.IdleDropped)
			}
			p.Losses = append(p.Losses, []string{fmt.Sprintf("%.0f–%.0f", l.AtS, l.ToS), what, name, went,
				fmt.Sprint(sl.SessionsLost), fmt.Sprint(sl.CartItemsLost), fmt.Sprint(sl.Failed), fmt.Sprint(sl.ClientSignInsLost)})
		}
	}
	for _, c := range rep.Consistency.checks() {
		verdict := "ok"
		if !c.c.OK {
			verdict = "FAILED"
		}
		p.Checks = append(p.Checks, []string{c.name, verdict, c.c.Detail})
	}
	return reportTemplate.Execute(w, p)
}

// plot is the drawing area of one chart and its scales.
type plot struct {
	w, h, l, r, t, b float64 // size and margins
	xMax, yMax       float64
}

func (p plot) x(t float64) float64 { return p.l + (p.w-p.l-p.r)*t/p.xMax }
func (p plot) y(v float64) float64 { return p.h - p.b - (p.h-p.t-p.b)*v/p.yMax }

// niceMax rounds v up to 1, 2 or 5 times a power of ten, at least floor.
func niceMax(v, floor float64) float64 {
	v = math.Max(v, floor)
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*e >= v {
			return m * e
		}
	}
	return 10 * e
}

// axes draws the frame, the y ticks (0, half, max) and the x ticks.
func (p plot) axes(b *strings.Builder, unit string) {
	fmt.Fprintf(b, `<g class="axes">`)
	for _, v := range []float64{0, p.yMax / 2, p.yMax} {
		y := p.y(v)
		fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" class="grid"/>`, p.l, p.w-p.r, y, y)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end" dy=".35em">%s</text>`, p.l-6, y, fmtTick(v))
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" class="unit">%s</text>`, p.l, p.t-6, html.EscapeString(unit))
	p.xTicks(b)
	b.WriteString(`</g>`)
}

// xTicks labels the time axis every 10, 20, 30 or 60 s.
func (p plot) xTicks(b *strings.Builder) {
	step := 10.0
	for _, s := range []float64{10, 20, 30, 60, 120, 300} {
		step = s
		if p.xMax/s <= 10 {
			break
		}
	}
	for t := 0.0; t <= p.xMax+1e-9; t += step {
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%.0f s</text>`, p.x(t), p.h-p.b+15, t)
	}
}

func fmtTick(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// markers draws a dashed line and a word at every event, from top to
// bottom.
func (rep *Report) markers(b *strings.Builder, p plot, top, bottom float64) {
	for i, l := range rep.Losses {
		if l.Kind == "start" {
			continue
		}
		x := p.x(l.AtS)
		fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" class="event"/>`, x, x, top, bottom)
		word := scenario.WordOf(l.Kind)
		// Alternate the labels' heights so two close events stay readable.
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" class="event-label">%s</text>`, x+3, top+10+float64(i%2)*11, html.EscapeString(word))
	}
}

// rateChart draws, for each side, the rate of a counted total per second:
// the difference of two consecutive samples over the time between them.
func (rep *Report) rateChart(end float64, total func(SeriesPoint) float64, unit string) string {
	type pt struct{ t, v float64 }
	lines := make([][]pt, len(rep.SideOrder))
	top := 0.0
	for i, name := range rep.SideOrder {
		s := rep.Series[name]
		for k := 1; k < len(s); k++ {
			dt := s[k].T - s[k-1].T
			if dt <= 0 {
				continue
			}
			v := math.Max(0, (total(s[k])-total(s[k-1]))/dt)
			lines[i] = append(lines[i], pt{s[k].T, v})
			top = math.Max(top, v)
		}
	}
	p := plot{w: 900, h: 230, l: 56, r: 16, t: 22, b: 24, xMax: math.Max(end, 1), yMax: niceMax(top, 5)}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg viewBox="0 0 %.0f %.0f" role="img" aria-label="%s">`, p.w, p.h, html.EscapeString(unit+", per side"))
	p.axes(&b, unit)
	rep.markers(&b, p, p.t, p.h-p.b)
	for i, line := range lines {
		if len(line) == 0 {
			continue
		}
		var d strings.Builder
		for k, q := range line {
			cmd := "L"
			if k == 0 {
				cmd = "M"
			}
			fmt.Fprintf(&d, "%s%.1f %.1f", cmd, p.x(q.t), p.y(q.v))
		}
		c := sideColors[i%len(sideColors)]
		fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="%s" stroke-width="2" stroke-dasharray="%s"/>`, d.String(), c.color, c.dash)
	}
	rep.legend(&b, p)
	b.WriteString(`</svg>`)
	return b.String()
}

// legend names each side's line at the top right.
func (rep *Report) legend(b *strings.Builder, p plot) {
	x := p.w - p.r - 10
	for i := len(rep.SideOrder) - 1; i >= 0; i-- {
		c := sideColors[i%len(sideColors)]
		name := html.EscapeString(rep.SideOrder[i])
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end" class="legend">%s</text>`, x, p.t-6, name)
		x -= 7.2*float64(len(rep.SideOrder[i])) + 4
		fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s" stroke-width="2" stroke-dasharray="%s"/>`, x-22, x, p.t-10, p.t-10, c.color, c.dash)
		x -= 34
	}
}

// sessionsChart draws one strip per replica of every side that counts its
// sessions: held (light) and in use (dark), each replica's own numbers.
func (rep *Report) sessionsChart(end float64) string {
	type strip struct{ side, id string }
	var strips []strip
	top := 0.0
	for _, name := range rep.SideOrder {
		seen := map[string]bool{}
		for _, pt := range rep.Series[name] {
			for _, r := range pt.Replicas {
				if r.Sessions == nil {
					continue
				}
				top = math.Max(top, *r.Sessions)
				if !seen[r.ID] {
					seen[r.ID] = true
					strips = append(strips, strip{name, r.ID})
				}
			}
		}
	}
	const stripH = 34.0
	h := 22 + 24 + stripH*float64(max(len(strips), 1))
	p := plot{w: 900, h: h, l: 150, r: 16, t: 22, b: 24, xMax: math.Max(end, 1), yMax: niceMax(top, 5)}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg viewBox="0 0 %.0f %.0f" role="img" aria-label="sessions held per replica">`, p.w, p.h)
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="unit">sessions, 0 to %s per strip</text>`, p.l, p.t-6, fmtTick(p.yMax))
	if len(strips) == 0 {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f">No replica of either side counted sessions in its memory: `+
			`a stateless server keeps none, redis and a sealed cookie keep them elsewhere.</text>`, p.l, p.t+20)
	}
	for i, s := range strips {
		y0 := p.t + stripH*float64(i)
		y1 := y0 + stripH - 4
		sy := func(v float64) float64 { return y1 - (y1-y0)*math.Min(v, p.yMax)/p.yMax }
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`, p.l-6, y1-4, html.EscapeString(s.id))
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" class="grid"/>`, p.l, p.w-p.r, y1, y1)
		for k, get := range []func(ReplicaPoint) *float64{
			func(r ReplicaPoint) *float64 { return r.Sessions },
			func(r ReplicaPoint) *float64 { return r.InUse },
		} {
			var d strings.Builder
			pen := false
			for _, pt := range rep.Series[s.side] {
				var v *float64
				for _, r := range pt.Replicas {
					if r.ID == s.id {
						v = get(r)
					}
				}
				if v == nil {
					pen = false // a replica not there, or not counted: a gap, not a zero
					continue
				}
				cmd := "L"
				if !pen {
					cmd = "M"
				}
				fmt.Fprintf(&d, "%s%.1f %.1f", cmd, p.x(pt.T), sy(*v))
				pen = true
			}
			if d.Len() == 0 {
				continue
			}
			style := `stroke="#009E73" stroke-width="1.5" opacity=".45"`
			if k == 1 {
				style = `stroke="#006b4f" stroke-width="2"`
			}
			fmt.Fprintf(&b, `<path d="%s" fill="none" %s/>`, d.String(), style)
		}
	}
	rep.markers(&b, p, p.t, p.h-p.b)
	p.xTicks(&b)
	b.WriteString(`</svg>`)
	return b.String()
}

// reportTemplate is report.html. The page is written as well-formed XML
// too (every element closed), links to nothing outside itself, and prints
// on A4 with every chart and table kept whole.
var reportTemplate = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8"/>
<meta name="viewport" content="width=device-width, initial-scale=1"/>
<title>statelab report: {{.Scenario}}</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #111; margin: 1.5rem auto; max-width: 60rem; padding: 0 1rem; line-height: 1.35; }
h1 { font-size: 1.6rem; margin: 0 0 .3rem; }
h2 { font-size: 1.2rem; margin: 1.6rem 0 .5rem; border-bottom: 2px solid #111; padding-bottom: .15rem; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; margin: .4rem 0; }
th, td { padding: .15rem .6rem; border-bottom: 1px solid #ccc; text-align: right; }
th:first-child, td:first-child { text-align: left; }
td.text, th.text { text-align: left; }
figure { margin: .8rem 0 1.2rem; }
figcaption { font-size: .92rem; color: #333; margin-top: .2rem; }
figcaption b { color: #111; }
svg { width: 100%; height: auto; font-size: 12px; }
svg text { fill: #222; }
svg .grid { stroke: #ddd; stroke-width: 1; }
svg .event { stroke: #555; stroke-width: 1; stroke-dasharray: 3 3; }
svg .event-label { font-size: 11px; fill: #333; }
svg .unit { fill: #555; }
.failed { color: #D55E00; font-weight: 700; }
.note { color: #444; font-size: .92rem; }
.side-0 { color: #0072B2; } .side-1 { color: #D55E00; }
@page { size: A4; margin: 14mm; }
@media print {
  body { margin: 0; max-width: none; font-size: 10.5pt; }
  h2 { break-after: avoid; }
  figure, table, .keep { break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
}
</style>
</head>
<body>
<header class="keep">
<h1>statelab report: {{.Scenario}}</h1>
<p>{{.Description}}. Started {{.Started}}, ran {{printf "%.0f" .DurationS}} s with {{.Users}} simulated users per side (seed {{.Seed}}).{{if .Manual}} Each event was fired by hand (--manual).{{end}}{{if .Interrupted}} <b>The run was interrupted: the numbers cover only the part that ran.</b>{{end}}</p>
<ul>{{range $i, $c := .Cols}}
<li><b class="side-{{$i}}">{{$c.Name}}</b> ({{$c.Server}} server, balancer {{$c.Balancer}}): the sign-in lives {{$c.Where}}.</li>{{end}}
</ul>
</header>

<section class="keep">
<h2>Totals</h2>
<p class="note">Counted from what the simulated users' HTTP clients received through each side's load balancer. Availability is ok / (requests − 409 conflicts).</p>
<table>
<thead><tr><th></th>{{range $i, $c := .Cols}}<th class="side-{{$i}}">{{$c.Name}}</th>{{end}}</tr></thead>
<tbody>{{range .Rows}}
<tr>{{range $j, $v := .}}{{if eq $j 0}}<th scope="row">{{$v}}</th>{{else}}<td>{{$v}}</td>{{end}}{{end}}</tr>{{end}}
</tbody>
</table>
{{range .Summary}}<p>{{.}}</p>
{{end}}</section>

<section class="keep" id="claims">
<h2>The lesson's claims, judged by this run</h2>
<p class="note">{{.ClaimsNote}}</p>
<table>
<thead><tr><th>claim</th>{{range $i, $c := .Cols}}<th class="text side-{{$i}}">{{$c.Name}}</th>{{end}}<th class="text">verdict</th><th class="text">why</th></tr></thead>
<tbody>{{range $cl := .Claims}}
<tr><th scope="row">{{$cl.Claim}}</th>{{range $.Cols}}<td class="text">{{index $cl.Measured .Name}}</td>{{end}}<td class="text verdict">{{$cl.Verdict}}</td><td class="text">{{$cl.Why}}</td></tr>{{end}}
</tbody>
</table>
</section>

<section class="keep">
<h2>What each side paid</h2>
<p class="note">{{.Note}}</p>
<table>
<thead><tr><th></th>{{range $i, $c := .Cols}}<th class="side-{{$i}}">{{$c.Name}}</th>{{end}}</tr></thead>
<tbody>{{range .Costs}}
<tr>{{range $j, $v := .}}{{if eq $j 0}}<th scope="row">{{$v}}</th>{{else}}<td>{{$v}}</td>{{end}}{{end}}</tr>{{end}}
</tbody>
</table>
</section>

<section class="keep">
<h2>Moving parts</h2>
<p class="note">{{.PartsNote}}</p>
<table>
<thead><tr><th></th>{{range $i, $c := .Cols}}<th class="text side-{{$i}}">{{$c.Name}}</th>{{end}}</tr></thead>
<tbody>{{range .Parts}}
<tr>{{range $j, $v := .}}{{if eq $j 0}}<th scope="row">{{$v}}</th>{{else}}<td class="text">{{$v}}</td>{{end}}{{end}}</tr>{{end}}
</tbody>
</table>
</section>

<section class="keep">
<h2>What one request tells an observer</h2>
<p class="note">{{.ObserverNote}}</p>
<ul>{{range .Observed}}
<li><b>{{index . 0}}</b>: <code>{{index . 1}}</code></li>{{end}}
</ul>
</section>

<section>
<h2>Second by second</h2>
{{range .Charts}}<figure id="chart-{{.ID}}" class="chart">
{{.SVG}}
<figcaption><b>{{.Title}}.</b> {{.Caption}}</figcaption>
</figure>
{{end}}</section>

{{if .Phases}}<section>
<h2>Load, phase by phase</h2>
{{range .Load}}<p>{{.}}</p>
{{end}}<p class="note">A phase runs from one event to the next; an event under way and, with an open-loop load, the first deadline after it (settling) are phases of their own. A request counts in the phase it arrived in. Throughput counts the answers 2xx per second; timeouts include the arrivals dropped.</p>
{{range $i, $t := .Phases}}<table class="keep">
<caption class="side-{{$i}}"><b>{{$t.Name}}</b></caption>
{{range $j, $row := $t.Rows}}<tr>{{range $row}}{{if eq $j 0}}<th>{{.}}</th>{{else}}<td>{{.}}</td>{{end}}{{end}}</tr>
{{end}}</table>
{{end}}</section>
{{end}}
<section class="keep">
<h2>Losses, event by event</h2>
<p class="note">Each row runs from an event to the next. "Went with the replicas" is what the replicas the event stopped said they held just before: sessions in use (a request used them in the last 10 s) / idle ones, most left behind by users who had signed in again. The other numbers are what the users counted in that stretch.</p>
<table>
<thead><tr><th>seconds</th><th class="text">event</th><th class="text">side</th><th>went with the replicas: in use / idle</th><th>sessions lost</th><th>cart items lost</th><th>failed requests</th><th>sign-ins the clients forgot</th></tr></thead>
<tbody>{{range .Losses}}
<tr>{{range $j, $v := .}}{{if lt $j 3}}<td class="text">{{$v}}</td>{{else}}<td>{{$v}}</td>{{end}}{{end}}</tr>{{end}}
</tbody>
</table>
</section>

<section class="keep">
<h2>Consistency of the shared database</h2>
<table>
<tbody>{{range .Checks}}
<tr><th scope="row">{{index . 0}}</th><td class="text{{if eq (index . 1) "FAILED"}} failed{{end}}">{{index . 1}}</td><td class="text">{{index . 2}}</td></tr>{{end}}
</tbody>
</table>
</section>

<section>
<h2>Events</h2>
{{if .Events}}<table>
<thead><tr><th>at (s)</th><th>kind</th><th>side</th><th>replica</th><th>took (ms)</th><th>source</th><th>note</th></tr></thead>
<tbody>{{range .Events}}
<tr><td>{{printf "%.1f" .AtS}}</td><td class="text">{{.Kind}}</td><td class="text">{{.Side}}</td><td class="text">{{.Replica}}</td><td>{{printf "%.0f" .TookMS}}</td><td class="text">{{.Source}}</td><td class="text">{{.Note}}{{if .Error}} <span class="failed">{{.Error}}</span>{{end}}</td></tr>{{end}}
</tbody>
</table>{{else}}<p>None: the scenario has no event, and no control was pressed.</p>{{end}}
</section>

<footer class="note"><p>Written by statelab compare. Every number was counted from what happened to real processes; nothing here was computed from what should have happened. report.json holds the same numbers.</p></footer>
</body>
</html>
`))

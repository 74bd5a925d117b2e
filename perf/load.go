package perf

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// target is one server and one request to send it, again and again.
type target struct {
	addr   string // host:port
	path   string // e.g. /api/books/1
	header string // the credential's header ("" for none)
	value  string // and its value
	client *fasthttp.HostClient
}

func newTarget(addr, path, header, value string, conns int) *target {
	return &target{
		addr: addr, path: path, header: header, value: value,
		client: &fasthttp.HostClient{
			Addr:                      addr,
			MaxConns:                  conns,
			ReadTimeout:               10 * time.Second,
			WriteTimeout:              10 * time.Second,
			MaxIdemponentCallAttempts: 1, // a failure is counted, not retried away
		},
	}
}

// result is what one closed-loop run counted.
type result struct {
	ok        int             // 200 answers
	failed    int             // other answers and transport errors
	firstFail string          // what the first failure was
	latencies []time.Duration // of the 200 answers
	elapsed   time.Duration   // from the start until the last worker stopped
}

// run keeps conns requests in flight for d: each worker sends the next
// request as soon as its answer is in (a closed loop, as wrk does).
// Requests still in flight at the deadline finish and count; elapsed
// includes them.
func (t *target) run(ctx context.Context, conns int, d time.Duration) result {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	uri := "http://" + t.addr + t.path
	results := make([]result, conns)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = t.worker(ctx, uri)
		}()
	}
	wg.Wait()
	total := result{elapsed: time.Since(start)}
	for _, r := range results {
		total.ok += r.ok
		total.failed += r.failed
		if total.firstFail == "" {
			total.firstFail = r.firstFail
		}
		total.latencies = append(total.latencies, r.latencies...)
	}
	return total
}

func (t *target) worker(ctx context.Context, uri string) result {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(uri)
	if t.header != "" {
		req.Header.Set(t.header, t.value)
	}
	var r result
	r.latencies = make([]time.Duration, 0, 1<<12)
	for ctx.Err() == nil {
		began := time.Now()
		err := t.client.Do(req, resp)
		took := time.Since(began)
		switch {
		case err != nil:
			r.fail(err.Error())
		case resp.StatusCode() != fasthttp.StatusOK:
			r.fail(fmt.Sprintf("status %d: %.200s", resp.StatusCode(), resp.Body()))
		default:
			r.ok++
			r.latencies = append(r.latencies, took)
		}
	}
	return r
}

func (r *result) fail(what string) {
	r.failed++
	if r.firstFail == "" {
		r.firstFail = what
	}
}

// percentile returns the p-th percentile (0 < p < 100) of sorted durations,
// the nearest-rank way: the smallest value with at least p % at or below it.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.9999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// median returns the median of xs (the mean of the middle two for an even
// count).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if n := len(s); n%2 == 1 {
		return s[n/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

package class

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"time"

	"github.com/statelab/statelab/compare/balancer"
	"github.com/statelab/statelab/internal/client"
	"github.com/statelab/statelab/internal/library"
)

// SidePrefix is where the runner forwards a side's API in a class:
// /s/{side}/api/books reaches the side's balancer as /api/books.
func SidePrefix(side string) string { return "/s/" + side }

// Forward sends /s/{side}/… to the side's balancer at balancerURL, so that a student's
// page, served by the runner, reaches both sides from one origin, and one
// browser holds both sides' credentials.
//
// Nothing of the servers' own protection is turned off. The balancer and
// the replicas check Host against their own address (hostcheck), so the
// request goes to the balancer with the balancer's address as Host, after
// the runner has checked the browser's Host against its own (guardHost).
// Cross-origin protection at the replicas compares Sec-Fetch-Site, or
// Origin with Host: Sec-Fetch-Site passes as the browser sent it, and an
// Origin that is the runner's own origin (the student page, the only page
// the runner serves there) is said as the balancer's, which is where the
// forwarded request now goes; any other Origin passes unchanged and is
// refused there as before. Over plain HTTP to a LAN address a browser
// sends no Sec-Fetch-Site at all, so without this every sign-in would be
// refused.
//
// Each side's cookies are scoped to its prefix (Set-Cookie's Path
// rewritten), so the two sides' session and routing cookies never meet;
// the runner's own cookies (the class's, the teacher's) are taken off
// before a request leaves. A request comes from a student (the class
// cookie) or the teacher; anyone else gets 403. Every answer to a student
// is counted for them (Observe), apart from the simulated users.
func (c *Class) Forward(side, balancerURL string) http.Handler {
	prefix := SidePrefix(side)
	balancerHost := strings.TrimPrefix(balancerURL, "http://")
	sessionSide := c.SessionSide(side)
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host, pr.Out.Host = "http", balancerHost, ""
			pr.Out.URL.Path = strings.TrimPrefix(pr.In.URL.Path, prefix)
			pr.Out.URL.RawPath = strings.TrimPrefix(pr.In.URL.RawPath, prefix)
			pr.SetXForwarded()
			dropCookies(pr.Out, StudentCookie, TeacherCookie)
			if o := pr.In.Header.Get("Origin"); o != "" && o == "http://"+pr.In.Host {
				pr.Out.Header.Set("Origin", "http://"+balancerHost)
			}
		},
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     time.Minute,
		},
		ModifyResponse: func(resp *http.Response) error {
			scopeCookies(resp.Header, prefix)
			fw, _ := resp.Request.Context().Value(forwardedKey{}).(forwarded)
			if fw.student == nil {
				return nil
			}
			o := Observation{Side: side, Method: resp.Request.Method, Path: resp.Request.URL.Path, Sent: fw.sent,
				Status: resp.StatusCode, Replica: resp.Header.Get(client.ReplicaHeader), Cart: -1}
			if sessionSide && resp.StatusCode >= 200 && resp.StatusCode < 300 {
				o.Cart = cartOf(resp)
			}
			c.Observe(fw.student, o)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, req *http.Request, err error) {
			if req.Context().Err() == nil {
				c.cfg.Logger.Warn("forward to a balancer", "side", side, "err", err)
			}
			writeJSON(w, http.StatusBadGateway, map[string]any{"success": false, "code": balancer.CodeBadGateway,
				"message": "The runner could not reach the " + side + " balancer; try again in a moment."})
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		st := c.StudentOf(req)
		if st == nil && !c.IsTeacher(req) {
			writeJSON(w, http.StatusForbidden, map[string]any{"success": false, "code": library.EFORBIDDEN,
				"message": "Join the class first: open /join and type the code the projector shows."})
			return
		}
		ctx := context.WithValue(req.Context(), forwardedKey{}, forwarded{student: st, sent: time.Now()})
		proxy.ServeHTTP(w, req.WithContext(ctx))
	})
}

// forwardedKey is the context key of a forwarded request's student.
type forwardedKey struct{}

// forwarded is who sent a forwarded request, and when it reached the
// runner: the request's identity, for counting its answer.
type forwarded struct {
	student *Student
	sent    time.Time
}

// dropCookies takes the named cookies off r, keeping the others.
func dropCookies(r *http.Request, names ...string) {
	cookies := r.Cookies()
	r.Header.Del("Cookie")
	for _, c := range cookies {
		drop := false
		for _, n := range names {
			drop = drop || c.Name == n
		}
		if !drop {
			r.AddCookie(c)
		}
	}
}

// scopeCookies puts every cookie the answer sets under prefix: Path=/
// becomes Path=/s/{side}/, Path=/api/auth/ becomes /s/{side}/api/auth/,
// and a Domain goes (the runner's host is the only one). The other
// attributes stay as the server wrote them.
func scopeCookies(h http.Header, prefix string) {
	lines := h.Values("Set-Cookie")
	if len(lines) == 0 {
		return
	}
	out := make([]string, len(lines))
	for i, line := range lines {
		parts := strings.Split(line, ";")
		kept := []string{strings.TrimSpace(parts[0])}
		path := "/"
		for _, p := range parts[1:] {
			attr := strings.TrimSpace(p)
			k, v, _ := strings.Cut(attr, "=")
			switch strings.ToLower(strings.TrimSpace(k)) {
			case "path":
				if v = strings.TrimSpace(v); strings.HasPrefix(v, "/") {
					path = v
				}
				continue
			case "domain":
				continue
			}
			kept = append(kept, attr)
		}
		out[i] = strings.Join(append(kept, "Path="+prefix+path), "; ")
	}
	h["Set-Cookie"] = out
}

// maxCartAnswer bounds the cart answer the runner reads to count its
// items: a cart holds at most a few dozen books.
const maxCartAnswer = 256 << 10

// cartOf returns how many items the server's cart holds in a cart answer
// (GET /api/cart, the cart items' routes), 0 after a checkout, -1 for any
// other answer. It reads the body and puts it back for the browser.
func cartOf(resp *http.Response) int {
	path := resp.Request.URL.Path
	switch {
	case path == client.CheckoutPath:
		return 0
	case path != client.CartPath && path != client.CartItemsPath && !strings.HasPrefix(path, client.CartItemsPath+"/"):
		return -1
	}
	orig := resp.Body
	b, err := io.ReadAll(io.LimitReader(orig, maxCartAnswer))
	// What was read goes first, the rest (of an answer over the bound)
	// after it: the browser gets the answer whole either way.
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(b), orig), orig}
	if err != nil || len(b) == maxCartAnswer {
		return -1
	}
	var env struct {
		Data *client.Cart `json:"data"`
	}
	if json.Unmarshal(b, &env) != nil || env.Data == nil {
		return -1
	}
	return env.Data.Count
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

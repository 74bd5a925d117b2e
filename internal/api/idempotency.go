package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/statelab/statelab/internal/library"
)

// Headers of draft-ietf-httpapi-idempotency-key-header-07.
const (
	// IdempotencyKeyHeader names the request header whose key makes a
	// state-changing POST safe to send again: the change is made once,
	// and a retry gets the first answer.
	IdempotencyKeyHeader = "Idempotency-Key"
	// ReplayedHeader marks an answer that was stored under an
	// Idempotency-Key and is being sent again: nothing changed this time.
	ReplayedHeader = "Idempotent-Replayed"
)

// Results of a request that carried an Idempotency-Key, as the
// statelab_idempotency_requests_total metric labels them.
const (
	KeyStored   = "stored"     // the change was made and its answer stored under the key
	KeyReplayed = "replayed"   // the stored answer was sent again; nothing changed
	KeyReused   = "key_reused" // 422: the key names another request
	KeyInUse    = "key_in_use" // 409: the request the key names is still in flight here
	KeyFailed   = "failed"     // the change failed, so nothing was stored and the key stays free
)

// Result is what a state-changing request answers when its change is made:
// a status and the data and message of a success envelope.
type Result struct {
	Status  int
	Data    any
	Message string
}

// A Change makes the change a request asks for through s and says what to
// answer. It runs at most once per Idempotency-Key: inside the store's
// transaction, when the request carries a key, and on the store itself when
// it does not. A Change reads the request but never writes the answer: its
// Result is rendered once, so that a retry gets the same bytes.
type Change func(s library.Writes) (Result, error)

// Answer is a state-changing request's answer, rendered: the status and the
// body that were stored under the request's key, and whether they are
// being sent again.
type Answer struct {
	Status   int
	Body     []byte
	Replayed bool
}

// idempotency is what one process knows of the keys in flight in it, and
// its counts of what became of keyed requests.
type idempotency struct {
	requests *prometheus.CounterVec // result

	mu       sync.Mutex
	inFlight map[inFlightKey]struct{}
}

type inFlightKey struct {
	member int64
	key    string
}

func newIdempotency(reg prometheus.Registerer) *idempotency {
	id := &idempotency{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "statelab_idempotency_requests_total",
			Help: "State-changing requests that carried an Idempotency-Key, by result: stored (the change was made and its answer stored), replayed (the stored answer sent again, nothing changed), key_reused (422), key_in_use (409), failed (the change failed; nothing stored).",
		}, []string{"result"}),
		inFlight: map[inFlightKey]struct{}{},
	}
	reg.MustRegister(id.requests)
	for _, r := range []string{KeyStored, KeyReplayed, KeyReused, KeyInUse, KeyFailed} {
		id.requests.WithLabelValues(r)
	}
	return id
}

// claim marks a key in flight in this process; false when it already is.
func (id *idempotency) claim(k inFlightKey) bool {
	id.mu.Lock()
	defer id.mu.Unlock()
	if _, busy := id.inFlight[k]; busy {
		return false
	}
	id.inFlight[k] = struct{}{}
	return true
}

func (id *idempotency) release(k inFlightKey) {
	id.mu.Lock()
	defer id.mu.Unlock()
	delete(id.inFlight, k)
}

// Idempotent makes the change of a state-changing request and renders its
// answer, without writing it: the stateful checkout still has a cart to
// empty before it answers. A request without an Idempotency-Key runs change
// on the store, as any write always did. With a key, the answer comes from
// the store's Idempotent: the change is made and its answer stored in one
// transaction, or, when the member already sent this request under this
// key, the stored answer comes back with Replayed set and nothing changes.
//
// A key that is in flight in this process is refused at once with 409
// idempotency_key_in_use. A key in flight in another replica is not: SQLite
// serialises the two transactions, so the second request waits for the
// first and is answered with its stored answer.
func (a *API) Idempotent(w http.ResponseWriter, r *http.Request, change Change) (Answer, error) {
	return a.IdempotentOn(w, r, nil, change)
}

// IdempotentOn is Idempotent for a request that acts on more than its
// method, path and body say: subject, which goes into the fingerprint with
// them. The stateful checkout has no body and acts on the cart in the
// session; with the cart as its subject, the same key sent after the cart
// changed is another request (422 idempotency_key_reused), not a retry
// whose old answer would be replayed while nothing is borrowed.
func (a *API) IdempotentOn(w http.ResponseWriter, r *http.Request, subject []byte, change Change) (Answer, error) {
	key, ok, err := IdempotencyKey(r)
	if err != nil {
		return Answer{}, err
	}
	if !ok {
		res, err := change(a.cfg.Store)
		if err != nil {
			return Answer{}, err
		}
		return res.render(), nil
	}
	m, err := Member(r)
	if err != nil {
		return Answer{}, err
	}
	body, err := bufferBody(w, r)
	if err != nil {
		return Answer{}, err
	}
	k := inFlightKey{member: m.ID, key: key}
	if !a.idem.claim(k) {
		a.idem.requests.WithLabelValues(KeyInUse).Inc()
		return Answer{}, library.Errorf(library.EKEYINUSE,
			"The request sent with this Idempotency-Key is still being processed; wait for its answer, then retry with the same key to read it.")
	}
	defer a.idem.release(k)

	var first Answer
	stored, replayed, err := a.cfg.Store.Idempotent(r.Context(),
		library.IdempotentRequest{MemberID: m.ID, Key: key, Fingerprint: fingerprint(r, body, subject)},
		func(s library.Writes) (library.StoredResponse, error) {
			res, err := change(s)
			if err != nil {
				return library.StoredResponse{}, err
			}
			first = res.render()
			return library.StoredResponse{Status: first.Status, Body: first.Body}, nil
		})
	switch {
	case library.ErrorCode(err) == library.EKEYREUSED:
		a.idem.requests.WithLabelValues(KeyReused).Inc()
		return Answer{}, err
	case err != nil:
		a.idem.requests.WithLabelValues(KeyFailed).Inc()
		return Answer{}, err
	case replayed:
		a.idem.requests.WithLabelValues(KeyReplayed).Inc()
	default:
		a.idem.requests.WithLabelValues(KeyStored).Inc()
	}
	return Answer{Status: stored.Status, Body: stored.Body, Replayed: replayed}, nil
}

// WriteAnswer writes an answer Idempotent rendered; a replayed one says so
// in the Idempotent-Replayed header.
func WriteAnswer(w http.ResponseWriter, ans Answer) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if ans.Replayed {
		w.Header().Set(ReplayedHeader, "true")
	}
	w.WriteHeader(ans.Status)
	_, _ = w.Write(ans.Body) // an error means the client went away
}

// write serves a state-changing route whose whole work is change: the
// routes of the library that accept an Idempotency-Key. change may read w
// only to bound the body it decodes; it must not write to it.
func (a *API) write(change func(w http.ResponseWriter, r *http.Request, s library.Writes) (Result, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ans, err := a.Idempotent(w, r, func(s library.Writes) (Result, error) { return change(w, r, s) })
		if err != nil {
			Error(w, r, a.cfg.Logger, err)
			return
		}
		WriteAnswer(w, ans)
	})
}

// render encodes a success envelope exactly as Encode writes one.
func (res Result) render() Answer {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	// Data comes from the store's own types: it always encodes.
	_ = enc.Encode(Envelope{Success: true, Data: res.Data, Message: res.Message})
	return Answer{Status: res.Status, Body: b.Bytes()}
}

// IdempotencyKey reads the request's Idempotency-Key: the draft's sf-string
// ("…" with \" and \\ escapes), or, as many clients send it, the bare key.
// ok is false when the request has none.
func IdempotencyKey(r *http.Request) (key string, ok bool, err error) {
	vals := r.Header.Values(IdempotencyKeyHeader)
	switch {
	case len(vals) == 0:
		return "", false, nil
	case len(vals) > 1:
		return "", false, library.Errorf(library.EINVALID, "Send one Idempotency-Key header, not %d.", len(vals))
	}
	key = vals[0]
	if len(key) >= 2 && key[0] == '"' && key[len(key)-1] == '"' {
		var b strings.Builder
		for i := 1; i < len(key)-1; i++ {
			c := key[i]
			if c == '\\' && i+1 < len(key)-1 && (key[i+1] == '"' || key[i+1] == '\\') {
				i++
				c = key[i]
			} else if c == '\\' || c == '"' {
				return "", false, library.Errorf(library.EINVALID, "The quoted Idempotency-Key has a stray %q: inside the quotes, write \\\" and \\\\.", c)
			}
			b.WriteByte(c)
		}
		key = b.String()
	}
	if err := library.CheckIdempotencyKey(key); err != nil {
		return "", false, err
	}
	return key, true, nil
}

// bufferBody reads the whole body, at most MaxBodyBytes, and puts it back
// for the handler to decode.
func bufferBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		if isTooLarge(err) {
			return nil, decodeError(err)
		}
		return nil, library.Errorf(library.EINVALID, "The request body could not be read: %v.", err)
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	return b, nil
}

// fingerprint is what tells a retry from a different request sent under the
// same key: the method, the path and query (which hold the ids), and the
// body, byte for byte, and what else the request acts on (subject), when
// there is something.
func fingerprint(r *http.Request, body, subject []byte) string {
	h := sha256.New()
	io.WriteString(h, r.Method+" "+r.URL.RequestURI()+"\n")
	h.Write(body)
	if subject != nil {
		io.WriteString(h, "\nsubject ")
		h.Write(subject)
	}
	return hex.EncodeToString(h.Sum(nil))
}

package link

import (
	"math/rand/v2"
	"time"

	"github.com/Shopify/toxiproxy/v2/toxics"
)

// toxicType is the name the lab's latency toxic is registered under.
const toxicType = "statelab_latency"

// latencyToxic is Toxiproxy's latency toxic in microseconds instead of
// milliseconds: within one data centre a hop costs a fraction of a
// millisecond, which the stock toxic (whole milliseconds) cannot hold.
// Each chunk leaves latency ± jitter after it arrived, so chunks in a
// row are not each delayed on top of the one before.
type latencyToxic struct {
	LatencyUS int64 `json:"latency_us"`
	JitterUS  int64 `json:"jitter_us"`
}

func init() { toxics.Register(toxicType, new(latencyToxic)) }

// GetBufferSize is the chunks held at once, as the stock toxic has.
func (t *latencyToxic) GetBufferSize() int { return 1024 }

func (t *latencyToxic) delay() time.Duration {
	d := t.LatencyUS
	if t.JitterUS > 0 {
		d += rand.Int64N(2*t.JitterUS+1) - t.JitterUS
	}
	return time.Duration(d) * time.Microsecond
}

// Pipe holds each chunk until its delay has passed since it arrived.
func (t *latencyToxic) Pipe(stub *toxics.ToxicStub) {
	timer := time.NewTimer(0)
	<-timer.C
	defer timer.Stop()
	for {
		select {
		case <-stub.Interrupt:
			return
		case c := <-stub.Input:
			if c == nil {
				stub.Close()
				return
			}
			if wait := time.Until(c.Timestamp.Add(t.delay())); wait > 0 {
				timer.Reset(wait)
				select {
				case <-timer.C:
				case <-stub.Interrupt:
					stub.Output <- c // never drop bytes on the floor
					return
				}
			}
			stub.Output <- c
		}
	}
}

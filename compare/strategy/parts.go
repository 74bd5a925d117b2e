package strategy

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Parts is what a deployment of a strategy must run, share and keep beyond
// its replicas, its balancer and the shared database every strategy has:
// the lesson's "simplicity", counted from what the strategy needs rather
// than asserted. Everything in it is worked out from the strategy's own
// description (its server, session store, credential and Services), so a
// new strategy cannot be described twice in two ways.
type Parts struct {
	// Services are the programs the replicas need running beside them.
	Services []string `json:"services"`
	// Secrets are what every replica must be given alike, or sign-ins fail
	// on the replicas that were given another.
	Secrets []string `json:"secrets"`
	// State is the sign-in state kept on the server side that a
	// deployment has to back up, bound or lose: sessions, or the rows
	// that make a credential valid.
	State []string `json:"state"`
	// ReplicaRestartLoses says what a restart of one replica loses, and
	// ServiceRestartLoses what a restart of one of the Services loses
	// (empty without Services).
	ReplicaRestartLoses string `json:"replica_restart_loses"`
	ServiceRestartLoses string `json:"service_restart_loses,omitempty"`
}

// Count is how many moving parts there are: services, secrets and state.
func (p Parts) Count() int { return len(p.Services) + len(p.Secrets) + len(p.State) }

// Parts returns the strategy's moving parts.
func (s Strategy) Parts() Parts {
	p := Parts{Services: []string{}, Secrets: []string{}, State: []string{}, ReplicaRestartLoses: "nothing"}
	for _, svc := range s.Services() {
		p.Services = append(p.Services, svc.Program)
		if svc.SecretFlag != "" {
			p.Secrets = append(p.Secrets, svc.SecretFlag)
		}
	}
	switch {
	case s.Server == Stateful:
		// The session key signs (or seals) every cookie.
		p.Secrets = append([]string{s.Secret()}, p.Secrets...)
	case s.Credential == CredentialJWT:
		p.Secrets = append(p.Secrets, s.Secret())
	}
	switch {
	case s.HoldsSessionsInProcess():
		p.State = append(p.State, "sessions in each replica's memory (cannot be backed up)")
		p.ReplicaRestartLoses = "every session it held, with its cart"
	case len(p.Services) > 0:
		p.State = append(p.State, "sessions in "+strings.Join(p.Services, " and "))
		p.ServiceRestartLoses = "every session on every replica, with its cart (no persistence)"
	case s.Credential == CredentialAPIKey:
		// A key is valid because its row is there: resource state, backed
		// up with the database, and what makes it revocable.
		p.State = append(p.State, "API keys (rows in the shared database, swept when they expire)")
	}
	return p
}

// none says "none" for an empty list.
func none(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

// PartsRow is a strategy's moving parts as the cells of a table: the
// count, services, secrets, state, and what a restart loses.
func (s Strategy) PartsRow() []string {
	p := s.Parts()
	restart := "replica: " + p.ReplicaRestartLoses
	if p.ServiceRestartLoses != "" {
		restart += "; " + none(p.Services) + ": " + p.ServiceRestartLoses
	}
	return []string{fmt.Sprint(p.Count()), none(p.Services), none(p.Secrets), none(p.State), restart}
}

// PartsHead are the heads of PartsRow's cells.
var PartsHead = []string{"moving parts", "services beyond the replicas", "secrets to share", "state to back up or lose", "a restart loses"}

// WriteParts prints the moving parts of sts as a table.
func WriteParts(w io.Writer, sts []Strategy) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STRATEGY\t"+strings.ToUpper(strings.Join(PartsHead, "\t")))
	for _, s := range sts {
		fmt.Fprintln(tw, s.Name+"\t"+strings.Join(s.PartsRow(), "\t"))
	}
	tw.Flush()
}

package strategy

// Store is what a stateful strategy's session store says of itself
// (stateful.Description), sent with the strategy in JSON so that a page can
// word what a fault does to a side from these facts, not from the store's
// name.
type Store struct {
	Name string `json:"name"`
	// Services are the programs the store needs beside the replicas,
	// shared by all of them (redis-server); none for one that keeps its
	// sessions in the process or in the cookie.
	Services []string `json:"services"`
	// Shared: every replica finds the sessions any of them saved, so a
	// replica's restart, crash or scale-in loses none. Without Services,
	// a shared store keeps each session in its client's cookie.
	Shared bool `json:"shared"`
	// Revocable: a logout makes every copy of the cookie worthless at once.
	Revocable bool `json:"revocable"`
}

// Store returns what the strategy's session store says of itself; nil for
// a stateless strategy.
func (s Strategy) Store() *Store {
	k, ok := s.store()
	if !ok {
		return nil
	}
	st := &Store{Name: k.Name(), Services: []string{}, Shared: k.Shared(), Revocable: k.Revocable()}
	for _, svc := range k.Needs() {
		st.Services = append(st.Services, svc.Program)
	}
	return st
}

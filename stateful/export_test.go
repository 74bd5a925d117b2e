package stateful

// Put keeps sess under its own ID, as if Save had made it: the fuzz test
// needs a held session whose id, and so its signed cookie, is the same in
// every fuzz worker and in the committed corpus, and Save always draws a
// random id for a new session.
func (s *MemoryStore) Put(sess Session) {
	e := entry{sess: *clone(sess)}
	if s.ttl > 0 {
		e.expires = s.now().Add(s.ttl)
	}
	s.mu.Lock()
	s.sessions[sess.ID] = e
	s.mu.Unlock()
}

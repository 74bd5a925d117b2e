// Package class lets a room of students be the lab's users, with their own
// browsers, beside (or instead of) the simulated ones.
//
// A Class is what statelab compare --class keeps: a short code the
// projector shows, a teacher token only the teacher's browser holds (in a
// cookie the runner sets), and the students who joined. Each student who
// joins (POST /api/class/join with the code and a name) gets an account of
// their own in the run's shared store, with a random password, so no
// student can act as another and no per-account cap (sessions, sign-ins)
// is shared; and a class cookie, which the runner reads on every request a
// student's page sends to either side through its forwarder.
//
// The class counts what each student's requests found, per side, from the
// answers themselves: signed in or not, which replica answered, what the
// server's cart held. At each event (EventBegan, EventEnded) it notes who was
// signed in, and judges each of them from their own next request sent after
// the event ended: a 401 means the sign-in went with the event, a success
// that it survived. Nobody is counted as lost because they should have been;
// a student who has sent nothing since is "unheard".
//
// Forward is that forwarder: /s/{side}/… on the runner's address reaches
// the side's balancer, each side's cookies scoped to its prefix, and every
// answer to a student counted for them (Observe).
//
// The package knows no runner: compare mounts its handlers and forwarders,
// feeds it the events, and puts its Snapshot in the feed.
package class

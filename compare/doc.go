// Package compare is the comparison runner behind "statelab compare": it
// puts two ways of keeping a sign-in side by side, each as real replica
// processes (package supervisor) behind its own load balancer (package
// balancer), drives the same simulated users through both, plays a
// scenario of restarts, crashes and scaling on both at the same moments,
// and counts what the users' HTTP clients really received. The counts feed
// the terminal, /metrics, the dashboard's JSON feed and the report; none is
// computed from what should have happened.
package compare

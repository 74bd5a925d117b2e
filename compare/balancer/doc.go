// Package balancer is the lab's HTTP load balancer: a reverse proxy in
// front of one side's replicas that keeps their health current, drains a
// replica before a planned stop, retries a request that never reached a
// server, and chooses a replica for each request through a Policy (round
// robin, a routing cookie, or a consistent-hash ring), so that the retry,
// drain and in-flight accounting are written once for every policy.
package balancer

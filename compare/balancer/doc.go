// Package balancer is the lab's HTTP load balancer: a reverse proxy in
// front of one side's replicas that keeps their health current, drains a
// replica before a planned stop, retries a request that never reached a
// server or that a dying replica did not answer when sending it twice is
// safe (a read, or a write with an Idempotency-Key), and chooses a replica
// for each request through a Policy (round
// robin, a routing cookie, or a consistent-hash ring), so that the retry,
// drain and in-flight accounting are written once for every policy.
package balancer

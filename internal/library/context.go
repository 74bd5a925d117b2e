package library

import "context"

// memberKey is the context key for the request's member. Its type is
// unexported so no other package can read or overwrite the value by accident.
type memberKey struct{}

// NewContextWithMember returns a copy of ctx that carries m: the identity
// the server found for this request, from a session or from a token.
func NewContextWithMember(ctx context.Context, m Member) context.Context {
	return context.WithValue(ctx, memberKey{}, m)
}

// MemberFromContext returns the request's member and whether there is one.
func MemberFromContext(ctx context.Context) (Member, bool) {
	m, ok := ctx.Value(memberKey{}).(Member)
	return m, ok
}

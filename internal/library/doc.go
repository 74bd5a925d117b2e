// Package library is the domain of statelab: books, members and borrow
// records, the error codes every layer speaks, the Store interface that holds
// the resource state, and the helpers that carry a request's member through a
// context.
//
// It imports nothing else of statelab, so every other package can depend on
// it and it on none of them.
package library

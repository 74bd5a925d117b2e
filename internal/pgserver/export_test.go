package pgserver

// LookIn is lookIn, for the test of its error.
var LookIn = lookIn

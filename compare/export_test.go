package compare

// Internals the tests of package compare_test check directly: the words of
// the consistency checks, whatever the database they describe, and the
// losses counted per event from a report's series.
var (
	BorrowsCheck   = borrowsCheck
	CopiesChecks   = copiesChecks
	KeysChecks     = keysChecks
	LossesPerEvent = lossesPerEvent
)

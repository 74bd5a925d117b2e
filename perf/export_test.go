package perf

// Exported for the tests in package perf_test.
var (
	CPUTime     = cpuTime
	Pin         = pin
	AllowedCPUs = allowedCPUs
	Percentile  = percentile
	Median      = median
)

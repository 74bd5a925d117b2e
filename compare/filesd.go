package compare

// targetsChanged is called whenever a side's set of replicas changes. The
// Prometheus file_sd writer hooks in here.
func (r *Runner) targetsChanged() {}

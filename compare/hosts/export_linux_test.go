package hosts

import "context"

// OpenAs is Open for a runner whose pid is pid.
func OpenAs(ctx context.Context, cfg Config, pid int) (*Lab, error) { return open(ctx, cfg, pid) }

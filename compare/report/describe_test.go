package report_test

import (
	"testing"

	"github.com/statelab/statelab/compare/report"
	"github.com/statelab/statelab/compare/scenario"
)

func TestDescribeControl(t *testing.T) {
	held, inUse := 5.0, 3.0
	one := 1.0
	tests := []struct {
		name   string
		action string
		recs   []report.EventRecord
		want   string
	}{
		{"pause", scenario.ActionPause, nil, "The simulated users are paused."},
		{"restart with sessions", scenario.ActionRestart, []report.EventRecord{
			{Side: "memory", Kind: "restart", Replica: "memory-1", TookMS: 120, SessionsHeld: &held, SessionsInUse: &inUse},
			{Side: "jwt", Kind: "restart", Replica: "jwt-1", TookMS: 80},
		}, "memory: restart memory-1 in 120 ms; 3 sessions in use went with it (and 2 idle, left behind by users who had signed in again). jwt: restart jwt-1 in 80 ms."},
		{"one session held, failed", scenario.ActionCrash, []report.EventRecord{
			{Side: "memory", Kind: "crash", Replica: "memory-2", TookMS: 1, SessionsHeld: &one, Error: "boom"},
		}, "memory: crash memory-2 in 1 ms; 1 session it held in memory went with it (failed: boom)."},
		{"store restart", scenario.ActionRestartStore, []report.EventRecord{
			{Side: "redis", Kind: scenario.ActionRestartStore, Note: "redis-server restarted; live control"},
		}, "redis: redis-server restarted."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := report.DescribeControl(tt.action, tt.recs); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

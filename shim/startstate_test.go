package shim_test

import (
	"syscall"
	"testing"

	"berth.dev/berth/internal/testutil"
	"berth.dev/berth/shim"
)

// StartState answers with what State says once the process runs, in the
// start's own round trip.
func TestStartState(t *testing.T) {
	e := newEnv(t, berthRT, testutil.Spec("sleep", "100"))
	c := e.start()
	st, err := c.StartState(ctx(t), "")
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != shim.StatusRunning || st.Pid <= 0 || st.StartedAt.IsZero() {
		t.Fatalf("state from the start: %+v", st)
	}
	now, err := c.State(ctx(t), "")
	if err != nil || now.Pid != st.Pid || !now.StartedAt.Equal(st.StartedAt) {
		t.Fatalf("state %+v %v, the start said %+v", now, err, st)
	}
	if err := c.Kill(ctx(t), "", syscall.SIGKILL, true); err != nil {
		t.Fatal(err)
	}
	if ex, err := c.Wait(ctx(t), ""); err != nil || ex.ExitCode != 137 {
		t.Fatalf("wait: %+v %v", ex, err)
	}
}

package daemon

import (
	"context"
	"syscall"
	"time"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/shim"
)

// abandonShim ends the shim of a container whose start failed after the
// shim had created it: whatever runs is killed, the runtime deletes the
// container (its cgroups and state go with it) and the shim exits. It
// never takes the request's context: a start that failed or was cut must
// still leave no shim serving no container. A shim that will not shut
// down is killed as the last resort.
func (d *Daemon) abandonShim(client *shim.Client, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = client.Kill(ctx, "", syscall.SIGKILL, true)
	if st, err := client.State(ctx, ""); err == nil && st.Status == shim.StatusRunning {
		_, _ = client.Wait(ctx, "")
	}
	err := client.Shutdown(ctx)
	if err == nil || errdefs.Is(err, errdefs.KindNotFound) {
		return
	}
	d.log.Warn("shim of a failed start did not shut down; killing it", "id", id, "error", err)
	if pid := client.Pid(); pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

package daemon

import (
	"context"
	"time"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/internal/trace"
	"github.com/moby/moby/api/types/events"
)

// job runs one API operation under a name ("image.load"): its start and
// finish, duration and outcome are logged at debug. A job that changes
// state and fails publishes a daemon event "job-failed" (its successes
// publish the events docker names, from the job itself), so that failed
// operations are visible to `docker events` too; read-only jobs publish
// nothing.
func (d *Daemon) job(ctx context.Context, name string, mutates bool, fn func(context.Context) error) error {
	start := time.Now()
	d.log.Debug("job start", "job", name)
	trace.Step("job " + name)
	err := fn(ctx)
	dur := time.Since(start)
	trace.Step("job " + name + " done")
	if err != nil {
		d.log.Debug("job done", "job", name, "duration", dur, "outcome", "error", "kind", errdefs.KindOf(err).String(), "error", err)
		if mutates {
			d.events.Publish(events.DaemonEventType, "job-failed", d.id, map[string]string{
				"job": name, "error": err.Error(), "duration": dur.String(), "name": hostname(),
			})
		}
		return err
	}
	d.log.Debug("job done", "job", name, "duration", dur, "outcome", "ok")
	return nil
}

package container

import (
	"berth.dev/berth/daemon/server/httputils"
	"berth.dev/berth/errdefs"
	containertypes "github.com/moby/moby/api/types/container"
)

// checkCreateVersion refuses what a create body may carry only from a
// later API version on, in dockerd's words.
func checkCreateVersion(version string, hc *containertypes.HostConfig) error {
	if hc == nil || version == "" || httputils.CompareVersions(version, "1.45") >= 0 {
		return nil
	}
	for _, m := range hc.Mounts {
		if m.VolumeOptions != nil && m.VolumeOptions.Subpath != "" {
			return errdefs.Invalid("VolumeOptions.Subpath needs API v1.45 or newer")
		}
	}
	return nil
}

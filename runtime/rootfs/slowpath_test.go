package rootfs

import (
	"os"
	"testing"
)

// envSlow makes a test child take the fallbacks for old kernels: pathrs-lite
// and filepath-securejoin instead of openat2, mountinfo instead of
// statmount.
const envSlow = "BERTH_ROOTFS_TEST_SLOW"

func init() {
	if os.Getenv(envSlow) != "" {
		noOpenat2.Store(true)
		noStatmount.Store(true)
	}
}

// The fallbacks keep the same guarantees.
func TestSlowPaths(t *testing.T) {
	t.Setenv(envSlow, "1")
	for name, f := range map[string]func(*testing.T){
		"DefaultSpec":   TestDefaultSpec,
		"DefaultDev":    TestDefaultDev,
		"HostileRootfs": TestHostileRootfs,
		"MountFeatures": TestMountFeatures,
		"UserNS":        TestUserNS,
		"CgroupNS":      TestCgroupNS,
	} {
		t.Run(name, f)
	}
}

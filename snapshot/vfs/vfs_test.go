package vfs

import (
	"path/filepath"
	"testing"

	"berth.dev/berth/internal/leakcheck"
	"berth.dev/berth/snapshot"
	"berth.dev/berth/snapshot/testsuite"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

func newDriver(t *testing.T) snapshot.Driver {
	d, err := New(filepath.Join(t.TempDir(), "vfs"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSuite(t *testing.T) {
	testsuite.Run(t, newDriver, testsuite.ChainDepth(20), testsuite.Reopen(New))
}

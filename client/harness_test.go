package client_test

import (
	"testing"

	"berth.dev/berth/client"
	"berth.dev/berth/internal/leakcheck"
	"berth.dev/berth/internal/testutil"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// startBerthd runs `berth daemon` on fresh roots and returns a client of
// it; the daemon is stopped when the test ends.
func startBerthd(t *testing.T) (*client.Client, string) {
	t.Helper()
	host := testutil.StartBerthd(t)
	cl, err := client.New(client.WithHost(host))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl, host
}

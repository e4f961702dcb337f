package firewall

import (
	"testing"

	"berth.dev/berth/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

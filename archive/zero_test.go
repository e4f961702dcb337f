package archive

import "testing"

// TestAllZero: the shifted compare must see a lone non-zero byte anywhere,
// the first and last included.
func TestAllZero(t *testing.T) {
	if !allZero(nil) || !allZero(make([]byte, 1)) || !allZero(make([]byte, holeBlock)) {
		t.Error("zeros not seen as zeros")
	}
	for _, n := range []int{1, 2, 3, holeBlock} {
		for _, i := range []int{0, n / 2, n - 1} {
			b := make([]byte, n)
			b[i] = 1
			if allZero(b) {
				t.Errorf("len %d with byte %d set seen as zeros", n, i)
			}
		}
	}
	if allZero([]byte{7, 7, 7}) {
		t.Error("a run of equal non-zero bytes seen as zeros")
	}
}

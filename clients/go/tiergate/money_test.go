package tiergate

import "testing"

// Dollars prints exactly, to the nano-dollar, trailing zeros trimmed down to cents.
func TestDollarsIsExact(t *testing.T) {
	for nanos, want := range map[int64]string{
		0: "$0.00", 1: "$0.000000001", 136000: "$0.000136", 163500: "$0.0001635",
		25_000_000_000: "$25.00", 1_500_000_000: "$1.50", -5: "-$0.000000005",
	} {
		if got := Dollars(nanos); got != want {
			t.Errorf("Dollars(%d) = %q, want %q", nanos, got, want)
		}
	}
}

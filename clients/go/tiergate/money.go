package tiergate

import (
	"fmt"
	"strings"
)

// Dollars prints an amount of nano-dollars (a Cost field) exactly, the way the tiergate CLI
// does: 136000 -> "$0.000136", 25000000000 -> "$25.00", -5 -> "-$0.000000005".
func Dollars(nanos int64) string {
	sign := ""
	if nanos < 0 {
		sign, nanos = "-", -nanos
	}
	digits := strings.TrimRight(fmt.Sprintf("%09d", nanos%1_000_000_000), "0")
	for len(digits) < 2 {
		digits += "0"
	}
	return fmt.Sprintf("%s$%d.%s", sign, nanos/1_000_000_000, digits)
}

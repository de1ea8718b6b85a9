package gpu

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// ParseFraction turns a decimal share of one card ("0.25", "1", "0") into
// milli-GPUs, rounding to the nearest milli. Only plain decimals are
// accepted, so "NaN", "Inf", exponents and hex floats are rejected instead
// of producing surprising quotas. A positive value that would round to 0 is
// an error: silently turning a GPU request into a CPU one would be worse.
func ParseFraction(s string) (int, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("gpu: fraction: empty value")
	}
	digits, dots := 0, 0
	for i := 0; i < len(t); i++ {
		switch c := t[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.':
			dots++
		case c == '-' && i == 0:
			return 0, fmt.Errorf("gpu: fraction %q: must not be negative", s)
		case c == '+' && i == 0:
		default:
			return 0, fmt.Errorf("gpu: fraction %q: not a decimal number between 0 and 1", s)
		}
	}
	if digits == 0 || dots > 1 {
		return 0, fmt.Errorf("gpu: fraction %q: not a decimal number between 0 and 1", s)
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil {
		return 0, fmt.Errorf("gpu: fraction %q: %v", s, err)
	}
	if f > 1 {
		return 0, fmt.Errorf("gpu: fraction %q: more than one GPU (max 1.0)", s)
	}
	m := int(f*MilliPerGPU + 0.5)
	if m == 0 && f > 0 {
		return 0, fmt.Errorf("gpu: fraction %q: smaller than 0.001 of a GPU", s)
	}
	return m, nil
}

// FormatMilli writes milli-GPUs as the shortest exact decimal, the inverse
// of ParseFraction: 250 -> "0.25", 1000 -> "1", 1500 -> "1.5".
func FormatMilli(m int) string {
	sign := ""
	u := uint64(m)
	if m < 0 {
		sign = "-"
		u = uint64(-int64(m))
	}
	whole, frac := u/MilliPerGPU, u%MilliPerGPU
	if frac == 0 {
		return sign + strconv.FormatUint(whole, 10)
	}
	fs := strings.TrimRight(fmt.Sprintf("%03d", frac), "0")
	return sign + strconv.FormatUint(whole, 10) + "." + fs
}

// MilliForMem is the share of a card that a memory request stands for:
// ceil(req*1000/total), capped at one card. Rounding up means a memory-only
// request never lets more tasks onto a card than its memory could hold. An
// unknown total (0) counts as the whole card.
func MilliForMem(req, total uint64) int {
	if req == 0 {
		return 0
	}
	if total == 0 || req >= total {
		return MilliPerGPU
	}
	// 128-bit product: req*1000 overflows for totals above ~18 PB, and
	// req < total keeps the quotient below 1000 so Div64 cannot panic.
	hi, lo := bits.Mul64(req, MilliPerGPU)
	q, r := bits.Div64(hi, lo, total)
	if r != 0 {
		q++
	}
	if q > MilliPerGPU {
		q = MilliPerGPU
	}
	return int(q)
}

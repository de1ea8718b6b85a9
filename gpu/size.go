package gpu

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// sizeUnits maps lower-cased suffixes to multipliers. "GB" is decimal and
// "GiB" binary as the SI/IEC standards say; a bare letter ("G", like
// docker's "1g" or the JVM's "-Xmx1g") and "Gi" (Kubernetes) are binary
// because GPU memory is sized in powers of two.
var sizeUnits = map[string]uint64{
	"": 1, "b": 1,
	"k": 1 << 10, "ki": 1 << 10, "kib": 1 << 10, "kb": 1e3,
	"m": 1 << 20, "mi": 1 << 20, "mib": 1 << 20, "mb": 1e6,
	"g": 1 << 30, "gi": 1 << 30, "gib": 1 << 30, "gb": 1e9,
	"t": 1 << 40, "ti": 1 << 40, "tib": 1 << 40, "tb": 1e12,
	"p": 1 << 50, "pi": 1 << 50, "pib": 1 << 50, "pb": 1e15,
}

// SizeUnits lists the units ParseSize takes, for messages.
const SizeUnits = "B, KiB, MiB, GiB, TiB, KB, MB, GB, TB"

// SizeError is a size ParseSize could not read. Reason says why without
// the input, so a caller can name the flag or field it came from instead.
// BadUnit is set when the number or the unit could not be read, where
// the units taken are worth listing.
type SizeError struct {
	Input, Reason string
	BadUnit       bool
}

func (e *SizeError) Error() string {
	if e.BadUnit {
		return fmt.Sprintf("gpu: size %q: %s (use %s)", e.Input, e.Reason, SizeUnits)
	}
	return fmt.Sprintf("gpu: size %q: %s", e.Input, e.Reason)
}

func sizeErr(s, format string, args ...any) error {
	return &SizeError{Input: s, Reason: fmt.Sprintf(format, args...)}
}

// ParseSize reads a byte count such as "1GiB", "512MiB", "4GB", "1.5G" or
// "1024" (bytes); case does not matter and "" means 0 (no request).
// Fractions are rounded to the nearest byte.
func ParseSize(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, nil
	}
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	if num == "" || strings.Count(num, ".") > 1 || num == "." {
		if strings.HasPrefix(t, "-") {
			return 0, sizeErr(s, "must not be negative")
		}
		return 0, &SizeError{Input: s, Reason: "want a number with an optional unit", BadUnit: true}
	}
	mult, ok := sizeUnits[unit]
	if !ok {
		return 0, &SizeError{Input: s, Reason: fmt.Sprintf("unknown unit %q", t[i:]), BadUnit: true}
	}
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseUint(num, 10, 64)
		if err != nil || (n != 0 && mult > math.MaxUint64/n) {
			return 0, sizeErr(s, "too large")
		}
		return n * mult, nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, sizeErr(s, "%v", err)
	}
	v := math.Round(f * float64(mult))
	if v >= math.MaxUint64 {
		return 0, sizeErr(s, "too large")
	}
	return uint64(v), nil
}

// FormatSize writes a byte count for humans in binary units with one
// decimal ("1.0 GiB", "512 B").
func FormatSize(b uint64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := uint64(unit), 0
	for n := b / unit; n >= unit && exp < 5; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTPE"[exp])
}

package cli

import (
	"errors"
	"fmt"

	"github.com/ragnode/ragnode/gpu"
)

// parseSizeFlag reads a size flag, and on a mistake names the flag and the
// units it takes: the operator typed --max-file-size, not a gpu size.
func parseSizeFlag(flag, v string) (uint64, error) {
	b, err := gpu.ParseSize(v)
	var se *gpu.SizeError
	if errors.As(err, &se) {
		if se.BadUnit {
			return 0, fmt.Errorf("--%s %q: %s; want a number and one of %s (e.g. 100MiB)", flag, v, se.Reason, gpu.SizeUnits)
		}
		return 0, fmt.Errorf("--%s %q: %s", flag, v, se.Reason)
	}
	return b, err
}

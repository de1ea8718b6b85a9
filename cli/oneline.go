package cli

import (
	"regexp"
	"strings"
)

var (
	// go-multierror (Serf's and memberlist's joins) lists its errors as
	// "N errors occurred:\n\t* a\n\t* b\n\n".
	multiHead = regexp.MustCompile(`\b\d+ errors? occurred:\s*(\*\s+)?`)
	multiItem = regexp.MustCompile(`\s*\n\s*\*\s+`)
	spaces    = regexp.MustCompile(`\s+`)
)

// oneLineMsg makes an error message one line with single spaces: no
// newlines, no tabs, a multi-error's items joined with "; ".
func oneLineMsg(s string) string {
	s = multiHead.ReplaceAllString(strings.TrimSpace(s), "")
	s = multiItem.ReplaceAllString(s, "; ")
	return strings.TrimSpace(spaces.ReplaceAllString(s, " "))
}

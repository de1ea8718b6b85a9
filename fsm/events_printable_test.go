package fsm

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// TestEventMessagesPrintable: whatever a message carries (an internal key
// with its NUL, a task error with line breaks or escape sequences, bytes
// that are not UTF-8), the history holds one line of printable text,
// within the size bound and cut on a character boundary.
func TestEventMessagesPrintable(t *testing.T) {
	s := New()
	msgs := []string{
		"repair chunk copies: 0 done, 1 failed (last: legal\x00contract.pdf: boom)",
		"parse failed:\nline two\ttabbed\r",
		"colour \x1b[31mred\x1b[0m and a bell \x07",
		"not utf-8: \xff\xfe end",
		"zero width \u200b and text direction \u202e kept out",
		strings.Repeat("é", eventMsgMax), // two bytes each: the cut must not split one
	}
	var evs []Event
	for _, m := range msgs {
		evs = append(evs, Event{Kind: EvRepair, Msg: m})
	}
	mustApply(t, s, 1, Command{Type: CmdEvents, Now: 1, Events: evs})
	for i, e := range s.Events {
		if len(e.Msg) > eventMsgMax || !utf8.ValidString(e.Msg) {
			t.Fatalf("message %d: %d bytes, valid UTF-8 %v: %q", i, len(e.Msg), utf8.ValidString(e.Msg), e.Msg)
		}
		for _, r := range e.Msg {
			if !unicode.IsPrint(r) && r != ' ' {
				t.Fatalf("message %d holds %U: %q", i, r, e.Msg)
			}
		}
	}
	if got := s.Events[0].Msg; got != "repair chunk copies: 0 done, 1 failed (last: legal/contract.pdf: boom)" {
		t.Fatalf("key not rendered readably: %q", got)
	}
	if got := s.Events[1].Msg; got != "parse failed: line two tabbed " {
		t.Fatalf("line breaks: %q", got)
	}
	if got := s.Events[2].Msg; got != `colour \x1b[31mred\x1b[0m and a bell \x07` {
		t.Fatalf("escapes: %q", got)
	}
	if got := s.Events[3].Msg; got != `not utf-8: \xff\xfe end` {
		t.Fatalf("invalid UTF-8: %q", got)
	}
	// Clean text passes as it is.
	if got := printable("n1 is leader (term 4)", eventMsgMax); got != "n1 is leader (term 4)" {
		t.Fatalf("clean text changed: %q", got)
	}
}

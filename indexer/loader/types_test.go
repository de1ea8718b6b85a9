package loader

import (
	"slices"
	"testing"
)

func TestEveryKindHasExtensionAndMIME(t *testing.T) {
	exts, mimes := Extensions(), MIMETypes()
	if !slices.IsSorted(exts) || !slices.IsSorted(mimes) {
		t.Fatalf("not sorted: %v %v", exts, mimes)
	}
	for _, k := range Supported() {
		if len(kindMIME[k]) == 0 {
			t.Errorf("kind %s has no media type", k)
		}
		if !slices.Contains(exts, string(k)) {
			t.Errorf("kind %s has no extension of its name", k)
		}
	}
	if !slices.Contains(mimes, "application/pdf") || !slices.Contains(exts, "markdown") {
		t.Fatalf("exts %v mimes %v", exts, mimes)
	}
}

package loader

import "testing"

// setOptions changes the process-wide options for one test. Tests that
// call it must not run in parallel with each other.
func setOptions(t testing.TB, o Options) {
	t.Helper()
	prev := options()
	optMu.Lock()
	current = o.withDefaults()
	optMu.Unlock()
	t.Cleanup(func() {
		optMu.Lock()
		current = prev
		optMu.Unlock()
	})
}

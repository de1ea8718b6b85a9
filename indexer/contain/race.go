//go:build race

package contain

// raceEnabled: the race detector's shadow memory rules out an address-space
// limit on the child.
const raceEnabled = true

package catalog

import "time"

// sleepBriefly paces a poll for a condition (with a deadline in the caller).
func sleepBriefly() { time.Sleep(50 * time.Millisecond) }

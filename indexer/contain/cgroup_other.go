//go:build !linux

package contain

import "errors"

// cgroupV2 exists on Linux only; elsewhere the rlimits hold the limit.
type cgroupV2 struct{ base string }

func findCgroupV2(string) (*cgroupV2, error) { return nil, errors.New("no cgroups on this system") }

func (*cgroupV2) place(int, uint64) (string, error) { return "", errors.New("no cgroups") }

func (*cgroupV2) oomKilled(string) bool { return false }

func (*cgroupV2) remove(string) {}

// Package gpu reports which GPUs a node has and does the arithmetic of GPU
// fractions. Its guarantees: discovery never makes an NVML call unless
// nvml.Init succeeded (on a machine without a driver any later call kills
// the process), a node without a driver simply has no GPUs, and fractions
// are whole milli-GPUs (MilliPerGPU = one card) so that sums of allocations
// never drift the way float sums do. It takes no placement decisions.
package gpu

import (
	"errors"
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// MilliPerGPU is one whole card expressed in milli-GPUs.
const MilliPerGPU = 1000

// Device is one GPU of a node as the rest of the cluster sees it.
type Device struct {
	Index    int    `json:"index"`
	UUID     string `json:"uuid"`
	Name     string `json:"name"`
	MemTotal uint64 `json:"mem_total"`
}

// ErrNoDriver means NVML could not be initialised, which on a GPU-less
// machine is the normal case rather than a fault.
var ErrNoDriver = errors.New("gpu: no NVML driver")

// Source strings returned by Inventory.
const (
	SourceNVML     = "nvml"
	SourceDeclared = "declared"
	SourceNone     = "none"
)

// Discover lists the GPUs that NVML reports. Every call other than Init is
// made only after Init returned SUCCESS, and Shutdown is called on the way
// out so that the library's reference count stays balanced.
func Discover(lib nvml.Interface) ([]Device, error) {
	if lib == nil {
		return nil, errors.New("gpu: nil nvml interface")
	}
	if ret := lib.Init(); ret != nvml.SUCCESS {
		// Format the code eagerly: the string must not be resolved through
		// the library later, and the default table is safe without it.
		return nil, fmt.Errorf("%w: %s", ErrNoDriver, ret.Error())
	}
	defer lib.Shutdown()

	count, ret := lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return nil, fmt.Errorf("gpu: nvml device count: %s", ret.Error())
	}
	devs := make([]Device, 0, count)
	for i := 0; i < count; i++ {
		d, ret := lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			return nil, fmt.Errorf("gpu: nvml device %d handle: %s", i, ret.Error())
		}
		uuid, ret := d.GetUUID()
		if ret != nvml.SUCCESS {
			return nil, fmt.Errorf("gpu: nvml device %d uuid: %s", i, ret.Error())
		}
		name, ret := d.GetName()
		if ret != nvml.SUCCESS {
			return nil, fmt.Errorf("gpu: nvml device %d name: %s", i, ret.Error())
		}
		mem, ret := d.GetMemoryInfo()
		if ret != nvml.SUCCESS {
			return nil, fmt.Errorf("gpu: nvml device %d memory: %s", i, ret.Error())
		}
		devs = append(devs, Device{Index: i, UUID: uuid, Name: name, MemTotal: mem.Total})
	}
	return devs, nil
}

// Config is what the operator says about the node's GPUs.
type Config struct {
	// Declared is -1 to ask NVML (no driver means no GPUs), or N >= 0 for
	// exactly N virtual GPUs without consulting NVML, which lets tests and
	// laptops pretend to have cards.
	Declared int
	// DeclaredMem is the per-card memory of virtual GPUs; when > 0 it also
	// overrides what NVML reports, e.g. to keep headroom for other users.
	DeclaredMem uint64
	// NVML, when set, is asked instead of the system library: tests run
	// nodes on a mocked server (go-nvml's dgxh100) with no driver.
	NVML nvml.Interface
}

// Inventory returns the node's devices and where they came from: "nvml",
// "declared" or "none". lib may be nil, in which case the system NVML
// library is used. A missing driver is not an error: it yields no devices
// and source "none", so GPU-less nodes still start.
func Inventory(lib nvml.Interface, cfg Config) ([]Device, string, error) {
	if cfg.Declared < -1 {
		return nil, "", fmt.Errorf("gpu: declared GPU count %d: want -1 (auto) or >= 0", cfg.Declared)
	}
	if cfg.Declared >= 0 {
		devs := make([]Device, cfg.Declared)
		for i := range devs {
			devs[i] = Device{Index: i, UUID: fmt.Sprintf("virtual-%d", i), Name: "virtual", MemTotal: cfg.DeclaredMem}
		}
		return devs, SourceDeclared, nil
	}
	if lib == nil {
		lib = cfg.NVML
	}
	if lib == nil {
		lib = nvml.New()
	}
	devs, err := Discover(lib)
	if errors.Is(err, ErrNoDriver) {
		return nil, SourceNone, nil
	}
	if err != nil {
		return nil, SourceNVML, err
	}
	if cfg.DeclaredMem > 0 {
		for i := range devs {
			devs[i].MemTotal = cfg.DeclaredMem
		}
	}
	return devs, SourceNVML, nil
}

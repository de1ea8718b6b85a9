package gpu

import (
	"errors"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
)

func TestDiscoverDGXH100(t *testing.T) {
	srv := dgxh100.New()
	devs, err := Discover(srv)
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	if len(devs) != 8 {
		t.Fatalf("got %d devices, want 8", len(devs))
	}
	seen := map[string]bool{}
	for i, d := range devs {
		if d.Index != i {
			t.Errorf("device %d has index %d", i, d.Index)
		}
		if !strings.HasPrefix(d.UUID, "GPU-") || seen[d.UUID] {
			t.Errorf("device %d: bad or duplicate UUID %q", i, d.UUID)
		}
		seen[d.UUID] = true
		if d.Name != "NVIDIA H100 80GB HBM3" {
			t.Errorf("device %d: name %q", i, d.Name)
		}
		if d.MemTotal != 81920<<20 {
			t.Errorf("device %d: mem %d, want %d", i, d.MemTotal, uint64(81920<<20))
		}
	}
	if n := len(srv.ShutdownCalls()); n != 1 {
		t.Errorf("Shutdown called %d times, want 1", n)
	}
}

func TestDiscoverDGXA100(t *testing.T) {
	devs, err := Discover(dgxa100.New())
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	if len(devs) != 8 || devs[0].MemTotal == 0 || !strings.Contains(devs[0].Name, "A100") {
		t.Fatalf("unexpected devices: %+v", devs)
	}
}

// failingLib has an Init that fails the way a driver-less machine does and
// every other entry point fails the test: with the real library any such
// call would kill the process.
func failingLib(t *testing.T) *mock.Interface {
	called := func(name string) { t.Helper(); t.Fatalf("%s called after failed Init", name) }
	return &mock.Interface{
		InitFunc:     func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND },
		ShutdownFunc: func() nvml.Return { called("Shutdown"); return nvml.SUCCESS },
		DeviceGetCountFunc: func() (int, nvml.Return) {
			called("DeviceGetCount")
			return 0, nvml.SUCCESS
		},
		DeviceGetHandleByIndexFunc: func(int) (nvml.Device, nvml.Return) {
			called("DeviceGetHandleByIndex")
			return nil, nvml.SUCCESS
		},
		ErrorStringFunc: func(nvml.Return) string { called("ErrorString"); return "" },
		SystemGetDriverVersionFunc: func() (string, nvml.Return) {
			called("SystemGetDriverVersion")
			return "", nvml.SUCCESS
		},
	}
}

func TestDiscoverGatesOnInit(t *testing.T) {
	lib := failingLib(t)
	devs, err := Discover(lib)
	if !errors.Is(err, ErrNoDriver) {
		t.Fatalf("err = %v, want ErrNoDriver", err)
	}
	if !strings.Contains(err.Error(), "ERROR_LIBRARY_NOT_FOUND") {
		t.Errorf("error %q lacks the nvml error string", err)
	}
	if devs != nil {
		t.Errorf("devices = %v, want none", devs)
	}
	if n := len(lib.InitCalls()); n != 1 {
		t.Errorf("Init called %d times", n)
	}
}

func TestDiscoverShutsDownOnQueryError(t *testing.T) {
	shut := 0
	lib := &mock.Interface{
		InitFunc:           func() nvml.Return { return nvml.SUCCESS },
		ShutdownFunc:       func() nvml.Return { shut++; return nvml.SUCCESS },
		DeviceGetCountFunc: func() (int, nvml.Return) { return 0, nvml.ERROR_UNKNOWN },
	}
	if _, err := Discover(lib); err == nil || errors.Is(err, ErrNoDriver) {
		t.Fatalf("err = %v, want a non-ErrNoDriver error", err)
	}
	if shut != 1 {
		t.Errorf("Shutdown called %d times, want 1", shut)
	}
}

func TestInventoryDeclaredSkipsNVML(t *testing.T) {
	lib := failingLib(t)
	lib.InitFunc = func() nvml.Return { t.Fatal("NVML consulted despite a declared count"); return 0 }
	devs, src, err := Inventory(lib, Config{Declared: 2, DeclaredMem: 16 << 30})
	if err != nil || src != "declared" {
		t.Fatalf("src=%q err=%v", src, err)
	}
	want := []Device{
		{Index: 0, UUID: "virtual-0", Name: "virtual", MemTotal: 16 << 30},
		{Index: 1, UUID: "virtual-1", Name: "virtual", MemTotal: 16 << 30},
	}
	if len(devs) != 2 || devs[0] != want[0] || devs[1] != want[1] {
		t.Fatalf("devs = %+v", devs)
	}
	devs, src, err = Inventory(lib, Config{Declared: 0})
	if err != nil || src != "declared" || len(devs) != 0 {
		t.Fatalf("Declared 0: devs=%v src=%q err=%v", devs, src, err)
	}
	if _, _, err := Inventory(lib, Config{Declared: -2}); err == nil {
		t.Fatal("Declared -2 accepted")
	}
}

func TestInventoryAuto(t *testing.T) {
	devs, src, err := Inventory(dgxh100.New(), Config{Declared: -1, DeclaredMem: 40 << 30})
	if err != nil || src != "nvml" || len(devs) != 8 {
		t.Fatalf("devs=%d src=%q err=%v", len(devs), src, err)
	}
	for _, d := range devs {
		if d.MemTotal != 40<<30 {
			t.Errorf("DeclaredMem did not override: %+v", d)
		}
	}
	devs, src, err = Inventory(failingLib(t), Config{Declared: -1})
	if err != nil || src != "none" || len(devs) != 0 {
		t.Fatalf("no driver: devs=%v src=%q err=%v", devs, src, err)
	}
}

// TestInventorySystem uses the real library: on a machine without a driver
// it must report no GPUs rather than crash; where a driver exists the
// devices must at least look sane.
func TestInventorySystem(t *testing.T) {
	devs, src, err := Inventory(nil, Config{Declared: -1})
	if err != nil {
		t.Fatalf("Inventory: %v", err)
	}
	switch src {
	case "none":
		if len(devs) != 0 {
			t.Fatalf("source none with devices %v", devs)
		}
	case "nvml":
		for i, d := range devs {
			if d.Index != i || d.UUID == "" || d.MemTotal == 0 {
				t.Errorf("odd device %+v", d)
			}
			t.Logf("found %+v", d)
		}
	default:
		t.Fatalf("source %q", src)
	}
}

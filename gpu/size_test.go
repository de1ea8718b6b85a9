package gpu

import (
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
		err  string
	}{
		{in: "", want: 0},
		{in: "  ", want: 0},
		{in: "0", want: 0},
		{in: "1024", want: 1024},
		{in: "1024B", want: 1024},
		{in: "1GiB", want: 1 << 30},
		{in: "1gib", want: 1 << 30},
		{in: "1 GiB", want: 1 << 30},
		{in: "1Gi", want: 1 << 30},
		{in: "512MiB", want: 512 << 20},
		{in: "512mb", want: 512e6},
		{in: "4GB", want: 4e9},
		{in: "1.5G", want: 3 << 29},
		{in: "1.5g", want: 3 << 29},
		{in: "2T", want: 2 << 40},
		{in: "1KiB", want: 1024},
		{in: "1kb", want: 1000},
		{in: "0.5KiB", want: 512},
		{in: "80GiB", want: 80 << 30},
		{in: "-1GiB", err: "negative"},
		{in: "GiB", err: "number"},
		{in: "1.2.3G", err: "number"},
		{in: "12XB", err: "unknown unit"},
		{in: "1 G B", err: "unknown unit"},
		{in: "99999999999PiB", err: "too large"},
		{in: "18446744073709551616", err: "too large"},
	} {
		got, err := ParseSize(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseSize(%q) = %d, %v; want error containing %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for _, tc := range []struct {
		in   uint64
		want string
	}{
		{0, "0 B"},
		{512, "512 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{512 << 20, "512.0 MiB"},
		{1 << 30, "1.0 GiB"},
		{80 << 30, "80.0 GiB"},
		{3 << 40, "3.0 TiB"},
		{1<<64 - 1, "16.0 EiB"},
	} {
		if got := FormatSize(tc.in); got != tc.want {
			t.Errorf("FormatSize(%d) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

package gpu

import "testing"

func TestParseFraction(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		bad  bool
	}{
		{in: "0.25", want: 250},
		{in: "1", want: 1000},
		{in: "1.0", want: 1000},
		{in: "0", want: 0},
		{in: "0.0", want: 0},
		{in: ".5", want: 500},
		{in: " 0.5 ", want: 500},
		{in: "+0.5", want: 500},
		{in: "0.333", want: 333},
		{in: "0.3334", want: 333},
		{in: "0.3335", want: 334},
		{in: "0.001", want: 1},
		{in: "0.0004", bad: true},
		{in: "1.0001", bad: true},
		{in: "1.5", bad: true},
		{in: "2", bad: true},
		{in: "-0.25", bad: true},
		{in: "NaN", bad: true},
		{in: "nan", bad: true},
		{in: "Inf", bad: true},
		{in: "1e-1", bad: true},
		{in: "0x1p-2", bad: true},
		{in: "", bad: true},
		{in: ".", bad: true},
		{in: "0.2.5", bad: true},
		{in: "abc", bad: true},
		{in: "25%", bad: true},
	} {
		got, err := ParseFraction(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("ParseFraction(%q) = %d, want error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseFraction(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestFormatMilli(t *testing.T) {
	for in, want := range map[int]string{
		0: "0", 1: "0.001", 10: "0.01", 250: "0.25", 333: "0.333", 500: "0.5",
		1000: "1", 1500: "1.5", 8000: "8", 2125: "2.125", -250: "-0.25",
	} {
		if got := FormatMilli(in); got != want {
			t.Errorf("FormatMilli(%d) = %q, want %q", in, got, want)
		}
	}
	for m := 0; m <= 1000; m++ {
		back, err := ParseFraction(FormatMilli(m))
		if err != nil || back != m {
			t.Fatalf("round trip %d -> %q -> %d, %v", m, FormatMilli(m), back, err)
		}
	}
}

func TestMilliForMem(t *testing.T) {
	const gib = 1 << 30
	for _, tc := range []struct {
		req, total uint64
		want       int
	}{
		{0, 80 * gib, 0},
		{0, 0, 0},
		{20 * gib, 80 * gib, 250},
		{1, 80 * gib, 1},
		{20*gib + 1, 80 * gib, 251},
		{80 * gib, 80 * gib, 1000},
		{100 * gib, 80 * gib, 1000},
		{5, 0, 1000},
		{1, 3, 334},
		{2, 3, 667},
		{1 << 62, 1<<63 + 1, 500},
		{1<<64 - 2, 1<<64 - 1, 1000},
	} {
		if got := MilliForMem(tc.req, tc.total); got != tc.want {
			t.Errorf("MilliForMem(%d, %d) = %d, want %d", tc.req, tc.total, got, tc.want)
		}
	}
}

package settings

import (
	"strings"
	"testing"
)

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{
		"0":          0,
		"268435456":  256 << 20,
		"256MiB":     256 << 20,
		"256Mi":      256 << 20,
		" 2 GiB ":    2 << 30,
		"512KiB":     512 << 10,
		"1Ki":        1 << 10,
		"3TiB":       3 << 40,
		"8388607TiB": 8388607 << 40,
	} {
		got, err := ParseBytes(in)
		if err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "256MB", "256M", "256mib", "2G", "1.5GiB", "-1", "-1MiB", "+5", "0x10", "8388608TiB", "1e9"} {
		if got, err := ParseBytes(in); err == nil {
			t.Errorf("ParseBytes(%q) = %d, want an error", in, got)
		} else if !strings.Contains(err.Error(), in) {
			t.Errorf("ParseBytes(%q): %v does not quote the value", in, err)
		}
	}
	if _, err := ParseBytes("256MB"); err == nil || !strings.Contains(err.Error(), "decimal KB/MB/GB are not accepted") {
		t.Errorf("ParseBytes(256MB) = %v, want the binary-only hint", err)
	}
}

func TestFormatBytesRoundTrips(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 1: "1", 1000: "1000", 1 << 10: "1KiB", 256 << 20: "256MiB", 1536 << 20: "1536MiB", 2 << 30: "2GiB", 5 << 40: "5TiB"} {
		got := FormatBytes(n)
		if got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
		if back, err := ParseBytes(got); err != nil || back != n {
			t.Errorf("ParseBytes(FormatBytes(%d)) = %d, %v", n, back, err)
		}
	}
}

func TestByteSizeFlag(t *testing.T) {
	var b ByteSize
	if err := b.Set("64KiB"); err != nil || b != 64<<10 || b.String() != "64KiB" {
		t.Errorf("Set(64KiB) = %v, %d, %q", err, b, b.String())
	}
	if err := b.Set("64KB"); err == nil || b != 64<<10 {
		t.Errorf("Set(64KB) = %v and changed the value to %d; want an error and no change", err, b)
	}
}

func TestApproxBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 512: "512", 4608 << 20: "4608MiB", 12800 << 20: "~12.5GiB", 23175588 << 10: "~22.1GiB", 1<<30 + 1: "~1.0GiB"} {
		if got := approxBytes(n); got != want {
			t.Errorf("approxBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

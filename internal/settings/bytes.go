package settings

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// byteUnits are the suffixes ParseBytes accepts, largest first. They are binary only: "MB"
// means 10^6 to some and 2^20 to others, and a shard target or a memory budget that is 5%
// off is a silent surprise, so the decimal spellings are refused rather than guessed.
var byteUnits = []struct {
	suffix string
	size   int64
}{
	{"TiB", 1 << 40}, {"Ti", 1 << 40},
	{"GiB", 1 << 30}, {"Gi", 1 << 30},
	{"MiB", 1 << 20}, {"Mi", 1 << 20},
	{"KiB", 1 << 10}, {"Ki", 1 << 10},
}

// byteSyntax is the accepted form, quoted by every parse error.
const byteSyntax = "a whole number of bytes, optionally with a binary suffix KiB, MiB, GiB or TiB (Ki, Mi, Gi, Ti as in Kubernetes), e.g. 268435456 or 256MiB; decimal KB/MB/GB are not accepted"

// ParseBytes reads a non-negative byte count: a whole number, optionally followed by a binary
// suffix (256MiB, 2GiB, 512Ki). Decimal suffixes (KB, MB, GB), fractions and negative
// numbers are errors.
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range byteUnits {
		if n, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(n), u.size
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || t == "" || t[0] == '+' {
		return 0, fmt.Errorf("%q is not a byte size: use %s", s, byteSyntax)
	}
	if n < 0 {
		return 0, fmt.Errorf("%q is negative: a byte size is %s", s, byteSyntax)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q is too large a byte size", s)
	}
	return n * mult, nil
}

// FormatBytes writes n exactly, in the largest binary unit that divides it (256MiB), or as a
// plain number of bytes: ParseBytes reads back whatever it writes.
func FormatBytes(n int64) string {
	if n != 0 {
		for _, u := range byteUnits {
			if strings.HasSuffix(u.suffix, "B") && n%u.size == 0 {
				return strconv.FormatInt(n/u.size, 10) + u.suffix
			}
		}
	}
	return strconv.FormatInt(n, 10)
}

// approxBytes writes n for people: exactly when a binary unit divides it into fewer than
// five digits (4608MiB), otherwise rounded to a tenth of the largest unit it reaches and
// marked with "~" (~22.1GiB).
func approxBytes(n int64) string {
	for _, u := range byteUnits {
		if n != 0 && strings.HasSuffix(u.suffix, "B") && n%u.size == 0 && n/u.size < 10000 {
			return strconv.FormatInt(n/u.size, 10) + u.suffix
		}
	}
	for _, u := range byteUnits {
		if strings.HasSuffix(u.suffix, "B") && n >= u.size {
			return fmt.Sprintf("~%.1f%s", float64(n)/float64(u.size), u.suffix)
		}
	}
	return strconv.FormatInt(n, 10)
}

// ByteSize is a flag.Value for a byte count, read by ParseBytes, so `--shard-target-bytes
// 256MiB` and `SHARD_TARGET_BYTES=256MiB` mean the same.
type ByteSize int64

// Set parses a flag's value.
func (b *ByteSize) Set(s string) error {
	n, err := ParseBytes(s)
	if err != nil {
		return err
	}
	*b = ByteSize(n)
	return nil
}

// String writes the value as FormatBytes does.
func (b *ByteSize) String() string {
	if b == nil {
		return "0"
	}
	return FormatBytes(int64(*b))
}

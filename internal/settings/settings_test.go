package settings

import (
	"strings"
	"testing"
)

func TestEnvInt64(t *testing.T) {
	t.Setenv("T_INT", "")
	if n, err := EnvInt64("T_INT", 7); n != 7 || err != nil {
		t.Errorf("empty: %d, %v; want the default", n, err)
	}
	t.Setenv("T_INT", "42")
	if n, err := EnvInt64("T_INT", 7); n != 42 || err != nil {
		t.Errorf("42: %d, %v", n, err)
	}
	for _, bad := range []string{"256MiB", "four", "1.5", " 3"} {
		t.Setenv("T_INT", bad)
		_, err := EnvInt64("T_INT", 7)
		if err == nil || !strings.Contains(err.Error(), "T_INT") || !strings.Contains(err.Error(), bad) {
			t.Errorf("%q: %v; want an error naming T_INT and the value", bad, err)
		}
	}
}

func TestEnvBytes(t *testing.T) {
	t.Setenv("SHARD_TARGET_BYTES", "256MiB")
	if n, err := EnvBytes("SHARD_TARGET_BYTES", 1); n != 256<<20 || err != nil {
		t.Errorf("256MiB: %d, %v", n, err)
	}
	t.Setenv("SHARD_TARGET_BYTES", "8192")
	if n, err := EnvBytes("SHARD_TARGET_BYTES", 1); n != 8192 || err != nil {
		t.Errorf("8192: %d, %v", n, err)
	}
	t.Setenv("SHARD_TARGET_BYTES", "256MB")
	_, err := EnvBytes("SHARD_TARGET_BYTES", 1)
	if err == nil || !strings.Contains(err.Error(), "SHARD_TARGET_BYTES") || !strings.Contains(err.Error(), `"256MB"`) {
		t.Errorf("256MB: %v; want an error naming the variable and the value", err)
	}
}

func TestEnvBoolStrict(t *testing.T) {
	for v, want := range map[string]bool{"": true, "1": true, "true": true, "FALSE": false, "0": false} {
		t.Setenv("T_BOOL", v)
		if b, err := EnvBoolStrict("T_BOOL", true); b != want || err != nil {
			t.Errorf("%q: %v, %v; want %v", v, b, err, want)
		}
	}
	t.Setenv("T_BOOL", "yes")
	if _, err := EnvBoolStrict("T_BOOL", false); err == nil || !strings.Contains(err.Error(), `T_BOOL="yes"`) {
		t.Errorf("yes: %v; want an error naming the variable and the value", err)
	}
}

func TestEnvironmentKeepsEveryError(t *testing.T) {
	t.Setenv("T_A", "2GB")
	t.Setenv("T_B", "many")
	t.Setenv("T_C", "on")
	t.Setenv("T_D", "1GiB")
	var env Environment
	if b := env.Bytes("T_D", 0); b != 1<<30 {
		t.Errorf("T_D = %d", b)
	}
	if env.Err() != nil {
		t.Fatalf("no error yet: %v", env.Err())
	}
	env.Bytes("T_A", 0)
	env.Int64("T_B", 0)
	env.Bool("T_C", false)
	err := env.Err()
	for _, want := range []string{`T_A: "2GB"`, `T_B="many"`, `T_C="on"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Err() = %v, want it to name %s", err, want)
		}
	}
}

func TestOptionalEmptyMeansOff(t *testing.T) {
	var env Environment
	t.Setenv("METRICS_ADDR", "")
	if got := env.Optional("METRICS_ADDR", ":9464"); got != "" {
		t.Errorf("set to empty: %q, want empty (off)", got)
	}
	t.Setenv("METRICS_ADDR", "127.0.0.1:1")
	if got := env.Optional("METRICS_ADDR", ":9464"); got != "127.0.0.1:1" {
		t.Errorf("set: %q", got)
	}
	if got := env.Optional("NO_SUCH_VARIABLE_HERE", ":9464"); got != ":9464" {
		t.Errorf("unset: %q, want the default", got)
	}
}

// Package settings reads the worker's and starter's process settings from flags with
// environment defaults, so the same binary runs locally, in compose and in production. It
// also sizes a worker (see Size): how much work it takes at once for its cores, memory and
// staging disk.
//
// A malformed environment variable is an error that names the variable and its value, never
// a silent fall back to the default: a worker started with SHARD_TARGET_BYTES=256MB that
// quietly used 256 MiB would be fine, but one that read MAX_TABLE_EXPORTS=four as the
// default would be sized for work its operator meant to refuse.
package settings

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
)

// Temporal names the Temporal frontend and namespace.
type Temporal struct {
	Address   string
	Namespace string
}

// Env returns the environment variable or def.
func Env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

// EnvBool reads a boolean environment variable ("1", "true", ...); unset, empty or malformed
// reads as false.
//
// Deprecated: a malformed value ("yes") reads as false without a word; use
// Environment.Bool, which reports it.
func EnvBool(name string) bool {
	b, _ := strconv.ParseBool(os.Getenv(name))
	return b
}

// EnvInt64 reads an integer environment variable; unset or empty means def. Anything but a
// plain base-10 integer is an error naming the variable and its value.
func EnvInt64(name string, def int64) (int64, error) {
	v := Env(name, "")
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return def, fmt.Errorf("environment variable %s=%q is not an integer", name, v)
	}
	return n, nil
}

// EnvBytes reads a byte-count environment variable (see ParseBytes: 268435456 or 256MiB);
// unset or empty means def. A malformed value is an error naming the variable and its value.
func EnvBytes(name string, def int64) (int64, error) {
	v := Env(name, "")
	if v == "" {
		return def, nil
	}
	n, err := ParseBytes(v)
	if err != nil {
		return def, fmt.Errorf("environment variable %s: %w", name, err)
	}
	return n, nil
}

// EnvBoolStrict reads a boolean environment variable (1, t, true, TRUE, 0, f, false, ...);
// unset or empty means def. Anything else is an error naming the variable and its value.
func EnvBoolStrict(name string, def bool) (bool, error) {
	v := Env(name, "")
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return def, fmt.Errorf("environment variable %s=%q is not a boolean: use true or false (or 1 or 0)", name, v)
	}
	return b, nil
}

// Environment reads flag defaults from environment variables and keeps every malformed one,
// so a command registers all its flags in a row and then refuses to start with one error
// that names each bad variable. The zero value is ready to use.
type Environment struct {
	errs []error
}

// String is Env.
func (e *Environment) String(name, def string) string { return Env(name, def) }

// Optional reads a variable whose empty value means "off": set, even to "", it is its value;
// unset, it is def. (METRICS_ADDR= turns the metrics endpoint off.)
func (e *Environment) Optional(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

// Bool is EnvBoolStrict, keeping its error.
func (e *Environment) Bool(name string, def bool) bool {
	b, err := EnvBoolStrict(name, def)
	e.keep(err)
	return b
}

// Int64 is EnvInt64, keeping its error.
func (e *Environment) Int64(name string, def int64) int64 {
	n, err := EnvInt64(name, def)
	e.keep(err)
	return n
}

// Bytes is EnvBytes, keeping its error.
func (e *Environment) Bytes(name string, def int64) ByteSize {
	n, err := EnvBytes(name, def)
	e.keep(err)
	return ByteSize(n)
}

// Err joins the errors of every malformed variable read so far; nil when there are none.
func (e *Environment) Err() error { return errors.Join(e.errs...) }

func (e *Environment) keep(err error) {
	if err != nil {
		e.errs = append(e.errs, err)
	}
}

// RegisterTemporal adds the Temporal connection flags, defaulting to the usual
// TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE environment variables.
func RegisterTemporal(fs *flag.FlagSet) *Temporal {
	t := &Temporal{}
	fs.StringVar(&t.Address, "temporal-address", Env("TEMPORAL_ADDRESS", "localhost:7233"), "Temporal frontend host:port (env TEMPORAL_ADDRESS)")
	fs.StringVar(&t.Namespace, "temporal-namespace", Env("TEMPORAL_NAMESPACE", "default"), "Temporal namespace (env TEMPORAL_NAMESPACE)")
	return t
}

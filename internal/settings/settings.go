// Package settings reads the worker's and starter's process settings from flags with
// environment defaults, so the same binary runs locally, in compose and in production.
package settings

import (
	"flag"
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

// EnvBool reads a boolean environment variable ("1", "true", ...).
func EnvBool(name string) bool {
	b, _ := strconv.ParseBool(os.Getenv(name))
	return b
}

// EnvInt64 reads an integer environment variable or def.
func EnvInt64(name string, def int64) int64 {
	if v, err := strconv.ParseInt(os.Getenv(name), 10, 64); err == nil {
		return v
	}
	return def
}

// RegisterTemporal adds the Temporal connection flags, defaulting to the usual
// TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE environment variables.
func RegisterTemporal(fs *flag.FlagSet) *Temporal {
	t := &Temporal{}
	fs.StringVar(&t.Address, "temporal-address", Env("TEMPORAL_ADDRESS", "localhost:7233"), "Temporal frontend host:port (env TEMPORAL_ADDRESS)")
	fs.StringVar(&t.Namespace, "temporal-namespace", Env("TEMPORAL_NAMESPACE", "default"), "Temporal namespace (env TEMPORAL_NAMESPACE)")
	return t
}

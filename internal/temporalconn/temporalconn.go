// Package temporalconn builds the Temporal client options of the worker and the starter from
// the SDK's standard environment configuration (go.temporal.io/sdk/contrib/envconfig), the
// same variables and TOML profiles the temporal CLI and every other SDK read:
//
//	TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE             frontend host:port and namespace
//	TEMPORAL_API_KEY                                  Temporal Cloud API key (turns TLS on)
//	TEMPORAL_TLS                                      true/false (1/0)
//	TEMPORAL_TLS_CLIENT_CERT_PATH, ..._KEY_PATH       mTLS client certificate and key
//	TEMPORAL_TLS_SERVER_CA_CERT_PATH                  CA that signed the frontend's certificate
//	TEMPORAL_TLS_SERVER_NAME                          name to verify it against (SNI)
//	TEMPORAL_TLS_DISABLE_HOST_VERIFICATION            true/false, never in production
//	TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE            a profile of a TOML file (default
//	                                                  ~/.config/temporalio/temporal.toml)
//	TEMPORAL_CLIENT_AUTHORITY, TEMPORAL_GRPC_META_*   :authority and extra gRPC metadata
//
// plus the *_DATA forms of the TLS paths. Environment variables override the profile, and
// the command line's --temporal-address and --temporal-namespace, when given, override both.
//
// envconfig quietly ignores some mistakes (TEMPORAL_TLS=yes, a TEMPORAL_CONFIG_FILE that does
// not exist) and reports others without saying where the value came from; Options refuses
// each with an error that names the variable or the profile key at fault. Nothing here ever
// puts the API key or key material into an error or a log attribute.
package temporalconn

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
)

// DefaultAddress is where the SDK connects when nothing names a frontend.
const DefaultAddress = "localhost:7233"

// Overrides are connection settings given on the command line. Each non-empty one replaces
// what the profile and the environment say.
type Overrides struct {
	Address   string // --temporal-address
	Namespace string // --temporal-namespace
}

// Options loads the profile and the environment, applies the overrides and returns client
// options ready for client.Dial (Logger, MetricsHandler and Interceptors are the caller's).
func Options(o Overrides) (client.Options, error) {
	return load(o, envconfig.EnvLookupOS, envconfig.DefaultConfigFilePath())
}

// load is Options with the environment and the default config file path injected.
func load(o Overrides, env envconfig.EnvLookup, defaultFile string) (client.Options, error) {
	for _, name := range []string{"TEMPORAL_TLS", "TEMPORAL_TLS_DISABLE_HOST_VERIFICATION"} {
		if v, ok := env.LookupEnv(name); ok && !isEnvBool(v) {
			return client.Options{}, fmt.Errorf("environment variable %s=%q is not a boolean: use true or false (or 1 or 0)", name, v)
		}
	}

	file, fileSource := defaultFile, "the default config file"
	if v, _ := env.LookupEnv("TEMPORAL_CONFIG_FILE"); v != "" {
		file, fileSource = v, "TEMPORAL_CONFIG_FILE"
		if _, err := os.Stat(file); err != nil {
			return client.Options{}, fmt.Errorf("environment variable TEMPORAL_CONFIG_FILE=%q: %w", v, unwrapPath(err))
		}
	}
	profile, profileSet := env.LookupEnv("TEMPORAL_PROFILE")
	profileSet = profileSet && profile != ""
	if !profileSet {
		profile = envconfig.DefaultConfigFileProfile
	}
	where := func(key string) string {
		return fmt.Sprintf("%s of profile %q in %s", key, profile, file)
	}

	// Read the file ourselves only to tell a missing profile from a broken file; the load
	// below is envconfig's own.
	if file != "" {
		conf, err := envconfig.LoadClientConfig(envconfig.LoadClientConfigOptions{ConfigFilePath: file, EnvLookup: env})
		if err != nil {
			return client.Options{}, fmt.Errorf("Temporal config file %s (%s): %w", file, fileSource, err)
		}
		if _, ok := conf.Profiles[profile]; profileSet && !ok {
			return client.Options{}, fmt.Errorf("environment variable TEMPORAL_PROFILE=%q: %s has no such profile (it has %s)", profile, file, profileNames(conf))
		}
	} else if profileSet {
		return client.Options{}, fmt.Errorf("environment variable TEMPORAL_PROFILE=%q: there is no config file to read it from; set TEMPORAL_CONFIG_FILE", profile)
	}
	loadOpts := envconfig.LoadClientConfigProfileOptions{ConfigFilePath: file, DisableFile: file == "", EnvLookup: env}
	if profileSet {
		loadOpts.ConfigFileProfile = profile // else "default", which may be absent
	}
	prof, err := envconfig.LoadClientConfigProfile(loadOpts)
	if err != nil {
		return client.Options{}, fmt.Errorf("Temporal client configuration: %w", err)
	}

	// source names where a setting came from: its variable when set, else the profile key.
	source := func(envName, key string) string {
		if _, ok := env.LookupEnv(envName); ok {
			return "environment variable " + envName
		}
		return where(key)
	}

	if o.Address != "" {
		prof.Address = o.Address
	}
	if o.Namespace != "" {
		prof.Namespace = o.Namespace
	}
	if prof.Address != "" {
		from := "--temporal-address"
		if o.Address == "" {
			from = source("TEMPORAL_ADDRESS", "address")
		}
		if _, port, err := net.SplitHostPort(prof.Address); err != nil || port == "" {
			return client.Options{}, fmt.Errorf("%s=%q is not host:port (e.g. %s, or my-ns.a1b2c.tmprl.cloud:7233)", from, prof.Address, DefaultAddress)
		}
	}
	if t := prof.TLS; t != nil && !t.Disabled {
		if err := checkTLS(t, source); err != nil {
			return client.Options{}, err
		}
	}

	opts, err := prof.ToClientOptions(envconfig.ToClientOptionsRequest{})
	if err != nil {
		// checkTLS has ruled out what we know of; keep envconfig's words for the rest.
		return client.Options{}, fmt.Errorf("Temporal client configuration: %w", err)
	}
	return opts, nil
}

// checkTLS reads every TLS file and PEM block up front, so a mistake names its setting.
func checkTLS(t *envconfig.ClientConfigTLS, source func(envName, key string) string) error {
	certPath := source("TEMPORAL_TLS_CLIENT_CERT_PATH", "tls.client_cert_path")
	keyPath := source("TEMPORAL_TLS_CLIENT_KEY_PATH", "tls.client_key_path")
	certData := source("TEMPORAL_TLS_CLIENT_CERT_DATA", "tls.client_cert_data")
	keyData := source("TEMPORAL_TLS_CLIENT_KEY_DATA", "tls.client_key_data")
	caPath := source("TEMPORAL_TLS_SERVER_CA_CERT_PATH", "tls.server_ca_cert_path")
	caData := source("TEMPORAL_TLS_SERVER_CA_CERT_DATA", "tls.server_ca_cert_data")

	hasData := len(t.ClientCertData) > 0 || len(t.ClientKeyData) > 0
	hasPath := t.ClientCertPath != "" || t.ClientKeyPath != ""
	switch {
	case hasData && hasPath:
		return fmt.Errorf("the mTLS client certificate is given both as a path and as data: set %s and %s, or %s and %s, not both",
			strings.TrimPrefix(certPath, "environment variable "), strings.TrimPrefix(keyPath, "environment variable "),
			strings.TrimPrefix(certData, "environment variable "), strings.TrimPrefix(keyData, "environment variable "))
	case hasPath && (t.ClientCertPath == "" || t.ClientKeyPath == ""):
		if t.ClientCertPath == "" {
			return fmt.Errorf("%s is set but no client certificate is: mTLS needs both; set TEMPORAL_TLS_CLIENT_CERT_PATH", keyPath)
		}
		return fmt.Errorf("%s is set but no client key is: mTLS needs both; set TEMPORAL_TLS_CLIENT_KEY_PATH", certPath)
	case hasData && (len(t.ClientCertData) == 0 || len(t.ClientKeyData) == 0):
		if len(t.ClientCertData) == 0 {
			return fmt.Errorf("%s is set but no client certificate is: mTLS needs both; set TEMPORAL_TLS_CLIENT_CERT_DATA", keyData)
		}
		return fmt.Errorf("%s is set but no client key is: mTLS needs both; set TEMPORAL_TLS_CLIENT_KEY_DATA", certData)
	}

	if hasPath {
		cert, err := readPEM(t.ClientCertPath, certPath, "CERTIFICATE")
		if err != nil {
			return err
		}
		key, err := readPEM(t.ClientKeyPath, keyPath, "PRIVATE KEY")
		if err != nil {
			return err
		}
		if _, err := tls.X509KeyPair(cert, key); err != nil {
			return fmt.Errorf("%s=%q and %s=%q are not a certificate and its private key: %v", certPath, t.ClientCertPath, keyPath, t.ClientKeyPath, err)
		}
	}
	if hasData {
		if _, err := tls.X509KeyPair(t.ClientCertData, t.ClientKeyData); err != nil {
			// The data is a secret: say which settings, never what they hold.
			return fmt.Errorf("%s and %s are not a PEM certificate and its private key: %v", certData, keyData, err)
		}
	}

	var ca []byte
	var caFrom string
	switch {
	case len(t.ServerCACertData) > 0 && t.ServerCACertPath != "":
		return fmt.Errorf("the server CA is given both as %s and as %s: set one", caPath, caData)
	case t.ServerCACertPath != "":
		b, err := readPEM(t.ServerCACertPath, caPath, "CERTIFICATE")
		if err != nil {
			return err
		}
		ca, caFrom = b, fmt.Sprintf("%s=%q", caPath, t.ServerCACertPath)
	case len(t.ServerCACertData) > 0:
		ca, caFrom = t.ServerCACertData, caData
	}
	if ca != nil && !x509.NewCertPool().AppendCertsFromPEM(ca) {
		return fmt.Errorf("%s holds no PEM certificate", caFrom)
	}
	return nil
}

// readPEM reads a PEM file and checks it holds a block of the kind (a suffix of the block
// type, so "PRIVATE KEY" accepts RSA and EC keys). Errors name the setting and the path only.
func readPEM(path, setting, kind string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s=%q: %w", setting, path, unwrapPath(err))
	}
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("%s=%q holds no PEM %s", setting, path, kind)
		}
		if strings.HasSuffix(block.Type, kind) {
			return b, nil
		}
	}
}

// unwrapPath drops the path an *os.PathError repeats, since the message names it already.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func isEnvBool(v string) bool {
	switch strings.ToLower(v) {
	case "1", "0", "true", "false":
		return true
	}
	return false
}

func profileNames(c envconfig.ClientConfig) string {
	if len(c.Profiles) == 0 {
		return "none"
	}
	names := make([]string, 0, len(c.Profiles))
	for n := range c.Profiles {
		names = append(names, fmt.Sprintf("%q", n))
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// LogAttrs describes the connection for a log line: where, which namespace and how it
// authenticates, never with what.
func LogAttrs(opts client.Options) []any {
	addr, ns := opts.HostPort, opts.Namespace
	if addr == "" {
		addr = DefaultAddress
	}
	if ns == "" {
		ns = client.DefaultNamespace
	}
	auth := "none"
	switch {
	case opts.Credentials != nil:
		auth = "api_key"
	case opts.ConnectionOptions.TLS != nil && len(opts.ConnectionOptions.TLS.Certificates) > 0:
		auth = "mtls"
	}
	return []any{"temporal", addr, "namespace", ns, "tls", opts.ConnectionOptions.TLS != nil, "auth", auth}
}

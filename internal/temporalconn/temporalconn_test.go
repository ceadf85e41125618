package temporalconn

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.temporal.io/api/workflowservice/v1"

	"github.com/dreamdata/destination-aws-s3/internal/temporalconn/conntest"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
)

// mapEnv is an environment for envconfig.EnvLookup.
type mapEnv map[string]string

func (m mapEnv) LookupEnv(k string) (string, bool) { v, ok := m[k]; return v, ok }
func (m mapEnv) Environ() []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return out
}

func loadEnv(t *testing.T, o Overrides, env mapEnv) (client.Options, error) {
	t.Helper()
	return load(o, env, filepath.Join(t.TempDir(), "absent", "temporal.toml"))
}

func attrs(opts client.Options) map[string]any {
	a := LogAttrs(opts)
	m := map[string]any{}
	for i := 0; i+1 < len(a); i += 2 {
		m[a[i].(string)] = a[i+1]
	}
	return m
}

func TestDefaultsEnvironmentAndOverrides(t *testing.T) {
	opts, err := loadEnv(t, Overrides{}, mapEnv{})
	if err != nil {
		t.Fatal(err)
	}
	if opts.HostPort != "" || opts.Namespace != "" || opts.ConnectionOptions.TLS != nil || opts.Credentials != nil {
		t.Errorf("defaults: %+v", opts)
	}
	if a := attrs(opts); a["temporal"] != DefaultAddress || a["namespace"] != "default" || a["tls"] != false || a["auth"] != "none" {
		t.Errorf("log attrs: %v", a)
	}

	env := mapEnv{"TEMPORAL_ADDRESS": "temporal.internal:7233", "TEMPORAL_NAMESPACE": "exports", "TEMPORAL_TLS": "true",
		"TEMPORAL_TLS_SERVER_NAME": "temporal.test", "TEMPORAL_GRPC_META_X_TEAM": "data"}
	opts, err = loadEnv(t, Overrides{}, env)
	if err != nil {
		t.Fatal(err)
	}
	if opts.HostPort != "temporal.internal:7233" || opts.Namespace != "exports" || opts.ConnectionOptions.TLS == nil ||
		opts.ConnectionOptions.TLS.ServerName != "temporal.test" || opts.HeadersProvider == nil {
		t.Errorf("from the environment: %+v", opts)
	}

	opts, err = loadEnv(t, Overrides{Address: "127.0.0.1:7999", Namespace: "scratch"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if opts.HostPort != "127.0.0.1:7999" || opts.Namespace != "scratch" || opts.ConnectionOptions.TLS == nil {
		t.Errorf("flags must override the address and namespace only: %+v", opts)
	}
}

func TestProfileFromConfigFile(t *testing.T) {
	pki := conntest.NewPKI(t)
	file := filepath.Join(t.TempDir(), "temporal.toml")
	toml := `
[profile.default]
address = "localhost:7233"

[profile.prod]
address = "temporal.prod:7233"
namespace = "exports-prod"
[profile.prod.tls]
client_cert_path = "` + pki.ClientCert + `"
client_key_path = "` + pki.ClientKey + `"
server_ca_cert_path = "` + pki.CAFile + `"
`
	if err := os.WriteFile(file, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := loadEnv(t, Overrides{}, mapEnv{"TEMPORAL_CONFIG_FILE": file, "TEMPORAL_PROFILE": "prod", "TEMPORAL_NAMESPACE": "exports-staging"})
	if err != nil {
		t.Fatal(err)
	}
	tc := opts.ConnectionOptions.TLS
	if opts.HostPort != "temporal.prod:7233" || opts.Namespace != "exports-staging" || tc == nil || len(tc.Certificates) != 1 || tc.RootCAs == nil {
		t.Errorf("profile prod with the environment over it: %+v", opts)
	}
	if a := attrs(opts); a["auth"] != "mtls" || a["tls"] != true {
		t.Errorf("log attrs: %v", a)
	}

	// A profile file mistake names the profile key and the file.
	bad := filepath.Join(t.TempDir(), "bad.toml")
	_ = os.WriteFile(bad, []byte(strings.Replace(toml, pki.ClientKey, "/nonexistent/client-key.pem", 1)), 0o600)
	_, err = loadEnv(t, Overrides{}, mapEnv{"TEMPORAL_CONFIG_FILE": bad, "TEMPORAL_PROFILE": "prod"})
	if err == nil || !strings.Contains(err.Error(), `tls.client_key_path of profile "prod" in `+bad) {
		t.Errorf("want the profile key named, got %v", err)
	}
}

func TestMistakesNameTheirVariable(t *testing.T) {
	pki := conntest.NewPKI(t)
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	_ = os.WriteFile(notPEM, []byte("hello"), 0o600)
	broken := filepath.Join(dir, "broken.toml")
	_ = os.WriteFile(broken, []byte("[profile.default\naddress ="), 0o600)
	withProfile := filepath.Join(dir, "profiles.toml")
	_ = os.WriteFile(withProfile, []byte("[profile.staging]\naddress = \"a:1\"\n"), 0o600)
	const apiKey = "tmprl-secret-api-key-0123456789"

	cases := []struct {
		name string
		o    Overrides
		env  mapEnv
		want []string
	}{
		{"tls not a bool", Overrides{}, mapEnv{"TEMPORAL_TLS": "yes"}, []string{`TEMPORAL_TLS="yes" is not a boolean`}},
		{"host verification not a bool", Overrides{}, mapEnv{"TEMPORAL_TLS_DISABLE_HOST_VERIFICATION": "never"}, []string{"TEMPORAL_TLS_DISABLE_HOST_VERIFICATION"}},
		{"address without port", Overrides{}, mapEnv{"TEMPORAL_ADDRESS": "temporal.internal"}, []string{`environment variable TEMPORAL_ADDRESS="temporal.internal" is not host:port`}},
		{"flag address without port", Overrides{Address: "temporal.internal"}, mapEnv{"TEMPORAL_ADDRESS": "ok:7233"}, []string{`--temporal-address="temporal.internal" is not host:port`}},
		{"config file missing", Overrides{}, mapEnv{"TEMPORAL_CONFIG_FILE": filepath.Join(dir, "nope.toml")}, []string{"TEMPORAL_CONFIG_FILE=", "no such file"}},
		{"config file broken", Overrides{}, mapEnv{"TEMPORAL_CONFIG_FILE": broken}, []string{broken, "TEMPORAL_CONFIG_FILE"}},
		{"profile missing", Overrides{}, mapEnv{"TEMPORAL_CONFIG_FILE": withProfile, "TEMPORAL_PROFILE": "prod"}, []string{`TEMPORAL_PROFILE="prod"`, `"staging"`}},
		{"cert without key", Overrides{}, mapEnv{"TEMPORAL_TLS_CLIENT_CERT_PATH": pki.ClientCert}, []string{"TEMPORAL_TLS_CLIENT_CERT_PATH is set", "TEMPORAL_TLS_CLIENT_KEY_PATH"}},
		{"key without cert", Overrides{}, mapEnv{"TEMPORAL_TLS_CLIENT_KEY_PATH": pki.ClientKey}, []string{"TEMPORAL_TLS_CLIENT_KEY_PATH is set", "TEMPORAL_TLS_CLIENT_CERT_PATH"}},
		{"cert file missing", Overrides{}, mapEnv{"TEMPORAL_TLS_CLIENT_CERT_PATH": filepath.Join(dir, "gone.pem"), "TEMPORAL_TLS_CLIENT_KEY_PATH": pki.ClientKey},
			[]string{"TEMPORAL_TLS_CLIENT_CERT_PATH=", "no such file"}},
		{"key not PEM", Overrides{}, mapEnv{"TEMPORAL_TLS_CLIENT_CERT_PATH": pki.ClientCert, "TEMPORAL_TLS_CLIENT_KEY_PATH": notPEM}, []string{"TEMPORAL_TLS_CLIENT_KEY_PATH=", "no PEM PRIVATE KEY"}},
		{"key of another cert", Overrides{}, mapEnv{"TEMPORAL_TLS_CLIENT_CERT_PATH": pki.ClientCert, "TEMPORAL_TLS_CLIENT_KEY_PATH": pki.ServerKey},
			[]string{"TEMPORAL_TLS_CLIENT_CERT_PATH", "TEMPORAL_TLS_CLIENT_KEY_PATH", "not a certificate and its private key"}},
		{"key data garbage", Overrides{}, mapEnv{"TEMPORAL_TLS_CLIENT_CERT_DATA": "-----BEGIN CERTIFICATE-----\nnotreally", "TEMPORAL_TLS_CLIENT_KEY_DATA": "super-secret-key-material"},
			[]string{"TEMPORAL_TLS_CLIENT_CERT_DATA and environment variable TEMPORAL_TLS_CLIENT_KEY_DATA"}},
		{"path and data", Overrides{}, mapEnv{"TEMPORAL_TLS_CLIENT_CERT_PATH": pki.ClientCert, "TEMPORAL_TLS_CLIENT_KEY_PATH": pki.ClientKey, "TEMPORAL_TLS_CLIENT_KEY_DATA": "x"},
			[]string{"both as a path and as data"}},
		{"CA not PEM", Overrides{}, mapEnv{"TEMPORAL_TLS_SERVER_CA_CERT_PATH": notPEM}, []string{"TEMPORAL_TLS_SERVER_CA_CERT_PATH=", "no PEM CERTIFICATE"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.env["TEMPORAL_API_KEY"] = apiKey
			_, err := loadEnv(t, c.o, c.env)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), apiKey) || strings.Contains(err.Error(), "super-secret-key-material") {
				t.Errorf("error leaks a secret: %v", err)
			}
		})
	}
}

// frontend is a fake Temporal frontend that records the metadata of every call.
type frontend struct {
	workflowservice.UnimplementedWorkflowServiceServer
	mu   sync.Mutex
	auth map[string][]string // method -> authorization values
}

func (f *frontend) GetSystemInfo(context.Context, *workflowservice.GetSystemInfoRequest) (*workflowservice.GetSystemInfoResponse, error) {
	return &workflowservice.GetSystemInfoResponse{}, nil
}

func (f *frontend) DescribeNamespace(_ context.Context, r *workflowservice.DescribeNamespaceRequest) (*workflowservice.DescribeNamespaceResponse, error) {
	return &workflowservice.DescribeNamespaceResponse{}, nil
}

func startFrontend(t *testing.T, tlsConf *credentials.TransportCredentials) (*frontend, string) {
	t.Helper()
	f := &frontend{auth: map[string][]string{}}
	opts := []grpc.ServerOption{grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		f.mu.Lock()
		f.auth[info.FullMethod] = append(f.auth[info.FullMethod], md.Get("authorization")...)
		f.mu.Unlock()
		return h(ctx, req)
	})}
	if tlsConf != nil {
		opts = append(opts, grpc.Creds(*tlsConf))
	}
	s := grpc.NewServer(opts...)
	workflowservice.RegisterWorkflowServiceServer(s, f)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return f, lis.Addr().String()
}

func TestAPIKeyRidesAsBearerMetadataOverTLSAndIsNeverLogged(t *testing.T) {
	pki := conntest.NewPKI(t)
	creds := credentials.NewTLS(pki.ServerTLS(false))
	f, addr := startFrontend(t, &creds)
	const apiKey = "tmprl-secret-api-key-0123456789"

	opts, err := loadEnv(t, Overrides{}, mapEnv{"TEMPORAL_ADDRESS": addr, "TEMPORAL_NAMESPACE": "acme.a1b2c",
		"TEMPORAL_API_KEY": apiKey, "TEMPORAL_TLS_SERVER_CA_CERT_PATH": pki.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	if opts.ConnectionOptions.TLS == nil {
		t.Fatal("an API key must turn TLS on")
	}
	var logs bytes.Buffer
	opts.Logger = tlog.NewStructuredLogger(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("connecting", LogAttrs(opts)...)
	c, err := client.Dial(opts)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.WorkflowService().DescribeNamespace(context.Background(), &workflowservice.DescribeNamespaceRequest{Namespace: "acme.a1b2c"})
	c.Close()

	f.mu.Lock()
	defer f.mu.Unlock()
	got := f.auth["/temporal.api.workflowservice.v1.WorkflowService/DescribeNamespace"]
	if len(got) == 0 || got[0] != "Bearer "+apiKey {
		t.Errorf("authorization metadata: %q (all: %v)", got, len(f.auth))
	}
	if strings.Contains(logs.String(), apiKey) {
		t.Errorf("the API key was logged:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), `"auth":"api_key"`) {
		t.Errorf("the log should say how it authenticates:\n%s", logs.String())
	}
}

func TestMutualTLS(t *testing.T) {
	pki := conntest.NewPKI(t)
	creds := credentials.NewTLS(pki.ServerTLS(true))
	_, addr := startFrontend(t, &creds)
	env := mapEnv{"TEMPORAL_ADDRESS": addr, "TEMPORAL_TLS_SERVER_CA_CERT_PATH": pki.CAFile,
		"TEMPORAL_TLS_CLIENT_CERT_PATH": pki.ClientCert, "TEMPORAL_TLS_CLIENT_KEY_PATH": pki.ClientKey}
	opts, err := loadEnv(t, Overrides{}, env)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(opts)
	if err != nil {
		t.Fatalf("mTLS dial: %v", err)
	}
	c.Close()

	// Without the client certificate the server refuses the handshake.
	delete(env, "TEMPORAL_TLS_CLIENT_CERT_PATH")
	delete(env, "TEMPORAL_TLS_CLIENT_KEY_PATH")
	env["TEMPORAL_TLS"] = "true"
	opts, err = loadEnv(t, Overrides{}, env)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5e9)
	defer cancel()
	if c, err := client.DialContext(ctx, opts); err == nil {
		c.Close()
		t.Fatal("dial without a client certificate succeeded")
	}
}

// Package conntest holds test helpers for Temporal connections: a throwaway PKI for TLS and
// mTLS, a TLS-terminating TCP proxy to put in front of a plaintext Temporal dev server (the
// Temporal CLI's dev server has no TLS flags), and the dev server itself.
package conntest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
)

// PKI is a throwaway CA with a server certificate for localhost and 127.0.0.1 and a
// client certificate, written as PEM files.
type PKI struct {
	Dir                                                  string
	CAFile, ServerCert, ServerKey, ClientCert, ClientKey string
	caPool                                               *x509.CertPool
	server                                               tls.Certificate
}

// NewPKI makes a PKI in a temporary directory of the test.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	p := &PKI{Dir: dir, caPool: x509.NewCertPool()}
	p.caPool.AddCert(ca)
	p.CAFile = writePEM(t, dir, "ca.pem", "CERTIFICATE", caDER)

	issue := func(name string, serial int64, usage x509.ExtKeyUsage, server bool) (certFile, keyFile string, pair tls.Certificate) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
		if server {
			tmpl.DNSNames = []string{"localhost", "temporal.test"}
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
		certFile = writePEM(t, dir, name+".pem", "CERTIFICATE", der)
		keyFile = writePEM(t, dir, name+"-key.pem", "PRIVATE KEY", keyDER)
		pair, err = tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		return certFile, keyFile, pair
	}
	p.ServerCert, p.ServerKey, p.server = issue("server", 2, x509.ExtKeyUsageServerAuth, true)
	p.ClientCert, p.ClientKey, _ = issue("client", 3, x509.ExtKeyUsageClientAuth, false)
	return p
}

// ServerTLS is the server side: h2 for gRPC, and the client certificate required when mTLS.
func (p *PKI) ServerTLS(mTLS bool) *tls.Config {
	c := &tls.Config{Certificates: []tls.Certificate{p.server}, NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS12}
	if mTLS {
		c.ClientAuth, c.ClientCAs = tls.RequireAndVerifyClientCert, p.caPool
	}
	return c
}

func writePEM(t testing.TB, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TLSProxy terminates TLS (mTLS when the config requires client certificates) and forwards
// the bytes to a plaintext backend, such as the Temporal dev server. It returns its address.
func TLSProxy(t testing.TB, conf *tls.Config, backend string) string {
	t.Helper()
	lis, err := tls.Listen("tcp", "127.0.0.1:0", conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				// The handshake happens here, so a refused client certificate closes the
				// connection before anything reaches the backend.
				if err := c.(*tls.Conn).Handshake(); err != nil {
					return
				}
				b, err := net.Dial("tcp", backend)
				if err != nil {
					return
				}
				defer b.Close()
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(b, c); done <- struct{}{} }()
				go func() { _, _ = io.Copy(c, b); done <- struct{}{} }()
				<-done
			}()
		}
	}()
	return lis.Addr().String()
}

// DevServer starts the Temporal CLI's dev server (headless, in memory, namespace "default",
// plus any extra start-dev flags), from $DEVSTACK_BIN or the user cache's
// destination-aws-s3/bin, and returns its plaintext address once it answers. It skips the
// test when the binary is missing.
func DevServer(t testing.TB, extra ...string) string {
	t.Helper()
	bin := os.Getenv("DEVSTACK_BIN")
	if bin == "" {
		cache, _ := os.UserCacheDir()
		bin = filepath.Join(cache, "destination-aws-s3", "bin")
	}
	bin = filepath.Join(bin, "temporal")
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("no Temporal CLI at %s: run `make tools`", bin)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := lis.Addr().(*net.TCPAddr).Port
	lis.Close()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	logFile := filepath.Join(t.TempDir(), "temporal.log")
	out, _ := os.Create(logFile)
	cmd := exec.Command(bin, append([]string{"server", "start-dev", "--ip", "127.0.0.1", "--port", fmt.Sprint(port), "--headless",
		"--log-level", "error", "--namespace", "default"}, extra...)...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		out.Close()
	})
	deadline := time.Now().Add(90 * time.Second)
	for {
		c, err := client.Dial(client.Options{HostPort: addr, Logger: quiet{}})
		if err == nil {
			_, err = c.CheckHealth(context.Background(), &client.CheckHealthRequest{})
			c.Close()
			if err == nil {
				return addr
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logFile)
			t.Fatalf("Temporal dev server did not answer at %s: %v\n%s", addr, err, b)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

type quiet struct{}

func (quiet) Debug(string, ...interface{}) {}
func (quiet) Info(string, ...interface{})  {}
func (quiet) Warn(string, ...interface{})  {}
func (quiet) Error(string, ...interface{}) {}

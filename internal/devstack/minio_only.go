package devstack

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// StartMinIO starts only MinIO (S3 + STS + KMS) with the same setup as Start: the customer
// buckets, the customer's PutObject-only policy and the platform exporter user that reaches it
// through STS AssumeRole. Benchmarks use it when they need the real upload path but neither
// Temporal nor BigQuery. Only o.BinDir, o.Dir and o.Ports.MinIO are used. On error it stops
// what it started; otherwise the caller stops the stack (and removes o.Dir if it made it).
func StartMinIO(ctx context.Context, o Options) (s *Stack, err error) {
	if o.BinDir == "" {
		o.BinDir = DefaultBinDir()
	}
	bin := filepath.Join(o.BinDir, "minio")
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("devstack: minio is not in %s: run `make tools` (or bash .ci/install-tools.sh) first", o.BinDir)
	}
	if o.Dir == "" {
		if o.Dir, err = os.MkdirTemp("", "devstack-minio-*"); err != nil {
			return nil, err
		}
	}
	port := o.Ports.MinIO
	if port == 0 {
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	s = &Stack{
		Dir:               o.Dir,
		S3Endpoint:        fmt.Sprintf("http://127.0.0.1:%d", port),
		MinIORootPassword: randomSecret(24),
		ExporterSecret:    randomSecret(24),
		KMSSecretKey:      KMSKeyID + ":" + base64.StdEncoding.EncodeToString(randomBytes(32)),
	}
	started := s // the named result is nil by the time a failing return runs this
	defer func() {
		if err != nil {
			started.Stop()
		}
	}()
	if err := s.spawnMinIO(bin, port); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := waitFor(wctx, "MinIO", func() error { return httpOK(s.S3Endpoint + "/minio/health/live") }); err != nil {
		return nil, s.withLogs(err, "minio")
	}
	if err := s.setupMinIO(wctx); err != nil {
		return nil, s.withLogs(err, "minio")
	}
	return s, nil
}

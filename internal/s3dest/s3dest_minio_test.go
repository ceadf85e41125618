//go:build integration

package s3dest_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/dreamdata/destination-aws-s3/internal/devstack"
	"github.com/dreamdata/destination-aws-s3/internal/failure"
	"github.com/dreamdata/destination-aws-s3/internal/s3dest"
)

// startMinIO starts a MinIO of its own for the test. Without the binary the test is skipped
// on a laptop, but fails under CI, where the tools are always built.
func startMinIO(t *testing.T) *devstack.Stack {
	t.Helper()
	if _, err := os.Stat(filepath.Join(devstack.DefaultBinDir(), "minio")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("minio is not in %s; CI must build it (bash .ci/install-tools.sh)", devstack.DefaultBinDir())
		}
		t.Skipf("minio is not in %s: run `make tools` (bash .ci/install-tools.sh) to run this test", devstack.DefaultBinDir())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stack, err := devstack.StartMinIO(ctx, devstack.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stack.Stop()
		os.RemoveAll(stack.Dir)
	})
	return stack
}

// crc32c is what any CRC32C tool says of b, in S3's notation.
func crc32c(b []byte) string {
	var s [4]byte
	binary.BigEndian.PutUint32(s[:], crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
	return base64.StdEncoding.EncodeToString(s[:])
}

func randomData(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{7}).Read(b)
	return b
}

type streamOnly struct{ r io.Reader }

func (s streamOnly) Read(p []byte) (int, error) { return s.r.Read(p) }

// TestMinIOWholeObjectCRC32C writes through the production path (platform identity → STS
// AssumeRole → the customer's PutObject-only policy) and checks, reading back as root, that
// the receipt's CRC32C is the whole object's, for single and multipart uploads.
func TestMinIOWholeObjectCRC32C(t *testing.T) {
	stack := startMinIO(t)
	root := stack.RootS3()
	base := aws.Config{Region: devstack.Region, Credentials: credentials.NewStaticCredentialsProvider(devstack.ExporterUser, stack.ExporterSecret, "")}
	target := s3dest.Target{AccountID: "minio-test", RoleARN: "arn:aws:iam::000000000000:role/dreamdata-data-platform",
		Bucket: devstack.CustomerBucket, Region: devstack.Region}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	data := randomData(40<<20 + 12345)
	file := filepath.Join(t.TempDir(), "shard.parquet")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		settings s3dest.Settings
		kms      bool
		body     func() io.Reader
		size     int
		partSize int64
	}{
		"multipart file":                 {body: func() io.Reader { f, _ := os.Open(file); return f }, size: len(data), partSize: s3dest.MinPartSize},
		"multipart file, default parts":  {body: func() io.Reader { f, _ := os.Open(file); return f }, size: len(data)},
		"multipart file, SSE-KMS":        {kms: true, body: func() io.Reader { f, _ := os.Open(file); return f }, size: len(data), partSize: 8 << 20},
		"multipart stream":               {body: func() io.Reader { return streamOnly{bytes.NewReader(data)} }, size: -1, partSize: s3dest.MinPartSize},
		"multipart, no checksum headers": {settings: s3dest.Settings{ChecksumWhenRequired: true}, body: func() io.Reader { return bytes.NewReader(data) }, size: len(data), partSize: s3dest.MinPartSize},
		"single put":                     {body: func() io.Reader { return bytes.NewReader(data[:1<<20]) }, size: 1 << 20},
		"single put, SSE-KMS":            {kms: true, body: func() io.Reader { return bytes.NewReader(data[:1<<20]) }, size: 1 << 20},
		"empty":                          {body: func() io.Reader { return bytes.NewReader(nil) }, size: 0},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := tc.settings
			s.S3Endpoint, s.STSEndpoint, s.PathStyle = stack.S3Endpoint, stack.S3Endpoint, true
			tg := target
			if tc.kms {
				tg.KMSKeyID = devstack.KMSKeyID
			}
			c := s3dest.New(base, s)
			if err := c.CheckAccess(ctx, tg); err != nil {
				t.Fatal(err)
			}
			key := "crc/" + strings.ReplaceAll(name, " ", "_")
			body := tc.body()
			if cl, ok := body.(io.Closer); ok {
				defer cl.Close()
			}
			var sent atomic.Int64
			start := time.Now()
			res, err := c.Writer(tg).Put(ctx, s3dest.Object{Key: key, Body: body, Size: int64(tc.size), PartSize: tc.partSize,
				ContentType: "application/vnd.apache.parquet", OnProgress: func(n int64) { sent.Add(n) }})
			if err != nil {
				t.Fatal(err)
			}
			want := data[:max(tc.size, 0)]
			if tc.size < 0 {
				want = data
			}
			t.Logf("%d bytes in %s, %d bytes reported sent, receipt CRC32C %s, ETag %s", len(want), time.Since(start).Round(time.Millisecond), sent.Load(), res.ChecksumCRC32C, res.ETag)
			if res.ChecksumCRC32C != crc32c(want) {
				t.Errorf("receipt CRC32C %s, the data's is %s", res.ChecksumCRC32C, crc32c(want))
			}
			if sent.Load() < int64(len(want)) {
				t.Errorf("progress reported %d bytes of %d", sent.Load(), len(want))
			}
			got, err := root.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(tg.Bucket), Key: aws.String(key)})
			if err != nil {
				t.Fatal(err)
			}
			back, err := io.ReadAll(got.Body)
			got.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if crc32c(back) != res.ChecksumCRC32C || !bytes.Equal(back, want) {
				t.Errorf("downloaded object: CRC32C %s, receipt says %s", crc32c(back), res.ChecksumCRC32C)
			}
			if aws.ToString(got.ContentType) != "application/vnd.apache.parquet" {
				t.Errorf("content type %q", aws.ToString(got.ContentType))
			}
			if tc.kms && got.ServerSideEncryption != types.ServerSideEncryptionAwsKms {
				t.Errorf("server-side encryption %q", got.ServerSideEncryption)
			}
			// What the server stored as the object's checksum.
			head, err := root.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(tg.Bucket), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled})
			if err != nil {
				t.Fatal(err)
			}
			attrs, err := root.GetObjectAttributes(ctx, &s3.GetObjectAttributesInput{Bucket: aws.String(tg.Bucket), Key: aws.String(key),
				ObjectAttributes: []types.ObjectAttributes{types.ObjectAttributesChecksum, types.ObjectAttributesObjectParts, types.ObjectAttributesObjectSize}})
			var attrCRC, attrType string
			var attrParts int32
			if err == nil {
				if attrs.Checksum != nil {
					attrCRC, attrType = aws.ToString(attrs.Checksum.ChecksumCRC32C), string(attrs.Checksum.ChecksumType)
				}
				if attrs.ObjectParts != nil {
					attrParts = aws.ToInt32(attrs.ObjectParts.TotalPartsCount)
				}
			}
			t.Logf("server stored: HeadObject CRC32C %q type %q; GetObjectAttributes CRC32C %q type %q parts %d (err %v)",
				aws.ToString(head.ChecksumCRC32C), head.ChecksumType, attrCRC, attrType, attrParts, err)
			if tc.settings.ChecksumWhenRequired {
				return // nothing was sent for the server to store
			}
			if v := aws.ToString(head.ChecksumCRC32C); v != "" && v != res.ChecksumCRC32C {
				t.Errorf("HeadObject CRC32C %s, receipt %s", v, res.ChecksumCRC32C)
			}
			if head.ChecksumType != "" && head.ChecksumType != types.ChecksumTypeFullObject {
				t.Errorf("HeadObject checksum type %s, want FULL_OBJECT", head.ChecksumType)
			}
			if attrCRC != "" && attrCRC != res.ChecksumCRC32C {
				t.Errorf("GetObjectAttributes CRC32C %s, receipt %s", attrCRC, res.ChecksumCRC32C)
			}
		})
	}

	t.Run("unknown KMS key", func(t *testing.T) {
		tg := target
		tg.KMSKeyID = "no-such-key"
		c := s3dest.New(base, s3dest.Settings{S3Endpoint: stack.S3Endpoint, STSEndpoint: stack.S3Endpoint, PathStyle: true})
		for _, size := range []int{1000, 12 << 20} {
			_, err := c.Writer(tg).Put(ctx, s3dest.Object{Key: "crc/kms-denied", Body: bytes.NewReader(data[:size]), Size: int64(size), PartSize: s3dest.MinPartSize})
			e, ok := failure.As(err)
			if !ok || e.Kind != failure.KindKMSDenied || !strings.Contains(e.Message, "kms:GenerateDataKey") {
				t.Errorf("%d bytes: error %v, want %s", size, err, failure.KindKMSDenied)
			}
			t.Logf("%d bytes: %v", size, err)
		}
	})

	t.Run("denied bucket", func(t *testing.T) {
		tg := target
		tg.Bucket = devstack.DeniedBucket
		c := s3dest.New(base, s3dest.Settings{S3Endpoint: stack.S3Endpoint, STSEndpoint: stack.S3Endpoint, PathStyle: true})
		for _, size := range []int{1000, 12 << 20} {
			_, err := c.Writer(tg).Put(ctx, s3dest.Object{Key: "x", Body: bytes.NewReader(data[:size]), Size: int64(size), PartSize: s3dest.MinPartSize})
			if e, ok := failure.As(err); !ok || e.Kind != failure.KindPutDenied {
				t.Errorf("%d bytes: error %v, want %s", size, err, failure.KindPutDenied)
			}
		}
	})

	// What MinIO answers the calls themselves, for the record: a FULL_OBJECT multipart
	// upload's completion, and a completion whose whole-object CRC32C is wrong.
	t.Run("FULL_OBJECT answers", func(t *testing.T) {
		part1, part2 := data[:5<<20], data[5<<20:6<<20]
		for _, whole := range []string{crc32c(data[:6<<20]), crc32c([]byte("wrong"))} {
			key := aws.String("crc/raw-" + whole[:4])
			cr, err := root.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(devstack.CustomerBucket), Key: key,
				ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c, ChecksumType: types.ChecksumTypeFullObject})
			if err != nil {
				t.Fatalf("CreateMultipartUpload FULL_OBJECT: %v", err)
			}
			var parts []types.CompletedPart
			for i, p := range [][]byte{part1, part2} {
				up, err := root.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(devstack.CustomerBucket), Key: key, UploadId: cr.UploadId,
					PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(p), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c, ChecksumCRC32C: aws.String(crc32c(p))})
				if err != nil {
					t.Fatalf("UploadPart: %v", err)
				}
				parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: up.ETag, ChecksumCRC32C: up.ChecksumCRC32C})
			}
			out, err := root.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(devstack.CustomerBucket), Key: key, UploadId: cr.UploadId,
				MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}, ChecksumType: types.ChecksumTypeFullObject, ChecksumCRC32C: aws.String(whole),
				MpuObjectSize: aws.Int64(6 << 20)})
			if whole == crc32c(data[:6<<20]) {
				if err != nil {
					t.Fatalf("CompleteMultipartUpload: %v", err)
				}
				t.Logf("CompleteMultipartUpload FULL_OBJECT answered CRC32C %q type %q (want %s)", aws.ToString(out.ChecksumCRC32C), out.ChecksumType, whole)
				if aws.ToString(out.ChecksumCRC32C) != whole {
					t.Errorf("answered %q", aws.ToString(out.ChecksumCRC32C))
				}
			} else {
				t.Logf("CompleteMultipartUpload with a wrong whole-object CRC32C: %v", err)
				if err == nil {
					t.Error("MinIO accepted a wrong whole-object CRC32C")
				}
			}
		}
	})
}

package s3dest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/dreamdata/destination-aws-s3/internal/failure"
)

// fakeS3 is a recording S3 that keeps what it is sent and checks checksums the way S3 does.
// Its bodies are "sent" through the request's body watch, as the middleware would.
type fakeS3 struct {
	mu       sync.Mutex
	calls    []string
	parts    map[int32][]byte
	object   []byte
	put      *s3.PutObjectInput
	create   *s3.CreateMultipartUploadInput
	uploads  []*s3.UploadPartInput
	complete *s3.CompleteMultipartUploadInput

	inFlight, maxInFlight int

	// fail answers this error for the call named (e.g. "UploadPart 2", "PutObject"), the
	// number of times given in failTimes (default once).
	fail      map[string]error
	failTimes map[string]int
	// answer overrides the checksum answered by the call named.
	answer map[string]string
	// stuck parts (all but failing ones) wait until their request is cancelled.
	stuck bool
}

func newFakeS3() *fakeS3 {
	return &fakeS3{parts: map[int32][]byte{}, fail: map[string]error{}, failTimes: map[string]int{}, answer: map[string]string{}}
}

func (f *fakeS3) record(call string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
	if err, ok := f.fail[call]; ok {
		f.failTimes[call]--
		if f.failTimes[call] <= 0 {
			delete(f.fail, call)
		}
		return err
	}
	return nil
}

// send reads a request body as the transport would: through the body watch in ctx.
func send(ctx context.Context, body io.Reader, n int64) ([]byte, error) {
	if w := bodyWatchFrom(ctx); w != nil {
		b := w.sending(body, n)
		defer b.finish()
		body = b
	}
	b, err := io.ReadAll(body)
	if err == nil && int64(len(b)) != n {
		err = fmt.Errorf("body has %d bytes, ContentLength %d", len(b), n)
	}
	return b, err
}

func crcOf(b []byte) string { return encodeCRC32C(crc32.Checksum(b, castagnoli)) }

func badDigest() error {
	return apiErr(400, "BadDigest", "The CRC32C you specified did not match the calculated checksum.")
}

func (f *fakeS3) PutObject(ctx context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	b, err := send(ctx, in.Body, aws.ToInt64(in.ContentLength))
	if err != nil {
		return nil, err
	}
	if err := f.record("PutObject"); err != nil {
		return nil, err
	}
	if in.ChecksumCRC32C != nil && *in.ChecksumCRC32C != crcOf(b) {
		return nil, badDigest()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.put, f.object = in, b
	out := &s3.PutObjectOutput{ETag: aws.String(`"etag"`), ChecksumCRC32C: in.ChecksumCRC32C}
	if a, ok := f.answer["PutObject"]; ok {
		out.ChecksumCRC32C = aws.String(a)
	}
	return out, nil
}

func (f *fakeS3) CreateMultipartUpload(_ context.Context, in *s3.CreateMultipartUploadInput, _ ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error) {
	if err := f.record("CreateMultipartUpload"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.create = in
	return &s3.CreateMultipartUploadOutput{UploadId: aws.String("upload-1")}, nil
}

func (f *fakeS3) UploadPart(ctx context.Context, in *s3.UploadPartInput, _ ...func(*s3.Options)) (*s3.UploadPartOutput, error) {
	f.mu.Lock()
	f.inFlight++
	f.maxInFlight = max(f.maxInFlight, f.inFlight)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.mu.Unlock()
	}()
	name := fmt.Sprintf("UploadPart %d", aws.ToInt32(in.PartNumber))
	if err := f.record(name); err != nil {
		return nil, err
	}
	if f.stuck {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	b, err := send(ctx, in.Body, aws.ToInt64(in.ContentLength))
	if err != nil {
		return nil, err
	}
	if aws.ToString(in.UploadId) != "upload-1" {
		return nil, apiErr(404, "NoSuchUpload", "no such upload")
	}
	if in.ChecksumCRC32C != nil && *in.ChecksumCRC32C != crcOf(b) {
		return nil, badDigest()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.parts[aws.ToInt32(in.PartNumber)] = b
	f.uploads = append(f.uploads, in)
	out := &s3.UploadPartOutput{ETag: aws.String(fmt.Sprintf(`"etag-%d"`, aws.ToInt32(in.PartNumber))), ChecksumCRC32C: in.ChecksumCRC32C}
	if a, ok := f.answer[name]; ok {
		out.ChecksumCRC32C = aws.String(a)
	}
	return out, nil
}

func (f *fakeS3) CompleteMultipartUpload(_ context.Context, in *s3.CompleteMultipartUploadInput, _ ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error) {
	if err := f.record("CompleteMultipartUpload"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.complete = in
	var whole []byte
	for i, p := range in.MultipartUpload.Parts {
		n := aws.ToInt32(p.PartNumber)
		if n != int32(i+1) || aws.ToString(p.ETag) != fmt.Sprintf(`"etag-%d"`, n) {
			return nil, apiErr(400, "InvalidPart", "part out of order or unknown")
		}
		whole = append(whole, f.parts[n]...)
	}
	if in.MpuObjectSize != nil && *in.MpuObjectSize != int64(len(whole)) {
		return nil, apiErr(400, "InvalidRequest", "size mismatch")
	}
	if in.ChecksumType == types.ChecksumTypeFullObject && aws.ToString(in.ChecksumCRC32C) != crcOf(whole) {
		return nil, badDigest()
	}
	f.object = whole
	out := &s3.CompleteMultipartUploadOutput{ETag: aws.String(`"etag-mpu"`), ChecksumCRC32C: in.ChecksumCRC32C, ChecksumType: in.ChecksumType}
	if a, ok := f.answer["CompleteMultipartUpload"]; ok {
		out.ChecksumCRC32C = aws.String(a)
	}
	return out, nil
}

type countingInvalidator struct{ n atomic.Int32 }

func (c *countingInvalidator) Invalidate() { c.n.Add(1) }

func testTarget() Target {
	return Target{AccountID: "acme", RoleARN: "arn:aws:iam::123456789012:role/r", Bucket: "acme-kms-exports", Region: "eu-west-1", KMSKeyID: "arn:aws:kms:eu-west-1:123456789012:key/k"}
}

// testPartSize is the smallest part the writers of these tests allow, instead of S3's 5 MiB.
const testPartSize = 64 << 10

func testWriter(f *fakeS3, s Settings) (*bucketWriter, *countingInvalidator) {
	inv := &countingInvalidator{}
	w := newBucketWriter(f, inv, testTarget(), s)
	w.minPartSize = testPartSize
	return w, inv
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{1})
	_, _ = r.Read(b)
	return b
}

// progress sums OnProgress calls, from any goroutine.
type progress struct{ n atomic.Int64 }

func (p *progress) add(n int64) { p.n.Add(n) }

// onlyReader hides every interface but io.Reader: a stream.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func tempFile(t *testing.T, data []byte) *os.File {
	t.Helper()
	path := filepath.Join(t.TempDir(), "shard.parquet")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestPutSmallObjectIsOnePutObject(t *testing.T) {
	data := randomBytes(1 << 20)
	f := newFakeS3()
	w, _ := testWriter(f, Settings{})
	var prog progress
	res, err := w.Put(context.Background(), Object{Key: "p/x.json", Body: bytes.NewReader(data), Size: int64(len(data)), ContentType: "application/json", OnProgress: prog.add})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.calls, []string{"PutObject"}) {
		t.Fatalf("calls %v", f.calls)
	}
	in := f.put
	if in.ACL != types.ObjectCannedACLBucketOwnerFullControl || aws.ToString(in.ContentType) != "application/json" ||
		in.ServerSideEncryption != types.ServerSideEncryptionAwsKms || aws.ToString(in.SSEKMSKeyId) != testTarget().KMSKeyID ||
		in.ChecksumAlgorithm != types.ChecksumAlgorithmCrc32c || aws.ToString(in.ChecksumCRC32C) != crcOf(data) {
		t.Errorf("PutObject input %+v", in)
	}
	if res.ChecksumCRC32C != crcOf(data) || res.ETag != `"etag"` || !bytes.Equal(f.object, data) {
		t.Errorf("result %+v", res)
	}
	if prog.n.Load() != int64(len(data)) {
		t.Errorf("progress %d, want %d", prog.n.Load(), len(data))
	}
}

func TestCRC32CEncoding(t *testing.T) {
	// RFC 3720 B.4: 32 bytes of zeros have CRC32C 0x8a9136aa.
	if got := crcOf(make([]byte, 32)); got != "ipE2qg==" {
		t.Errorf("crc32c of 32 zeros = %s", got)
	}
	f := newFakeS3()
	w, _ := testWriter(f, Settings{})
	res, err := w.Put(context.Background(), Object{Key: "empty", Body: bytes.NewReader(nil), Size: 0})
	if err != nil || res.ChecksumCRC32C != "AAAAAA==" || !slices.Equal(f.calls, []string{"PutObject"}) {
		t.Errorf("empty object: %+v %v %v", res, err, f.calls)
	}
}

// checkMultipart checks a finished multipart upload: call order, inputs and the object.
func checkMultipart(t *testing.T, f *fakeS3, data []byte, partSize int64, res PutResult) {
	t.Helper()
	parts := int((int64(len(data)) + partSize - 1) / partSize)
	if len(f.calls) != parts+2 || f.calls[0] != "CreateMultipartUpload" || f.calls[len(f.calls)-1] != "CompleteMultipartUpload" {
		t.Fatalf("calls %v", f.calls)
	}
	var middle []string
	for i := 1; i <= parts; i++ {
		middle = append(middle, fmt.Sprintf("UploadPart %d", i))
	}
	got := slices.Clone(f.calls[1 : parts+1])
	slices.Sort(got)
	slices.Sort(middle)
	if !slices.Equal(got, middle) {
		t.Errorf("parts uploaded %v", got)
	}
	c := f.create
	if c.ACL != types.ObjectCannedACLBucketOwnerFullControl || aws.ToString(c.ContentType) != "application/vnd.apache.parquet" ||
		c.ServerSideEncryption != types.ServerSideEncryptionAwsKms || aws.ToString(c.SSEKMSKeyId) != testTarget().KMSKeyID ||
		c.ChecksumAlgorithm != types.ChecksumAlgorithmCrc32c || c.ChecksumType != types.ChecksumTypeFullObject {
		t.Errorf("CreateMultipartUpload input %+v", c)
	}
	for _, u := range f.uploads {
		n := aws.ToInt32(u.PartNumber)
		if aws.ToString(u.ChecksumCRC32C) != crcOf(f.parts[n]) || u.ChecksumAlgorithm != types.ChecksumAlgorithmCrc32c {
			t.Errorf("part %d checksum %s", n, aws.ToString(u.ChecksumCRC32C))
		}
		if int64(len(f.parts[n])) != min(partSize, int64(len(data))-int64(n-1)*partSize) {
			t.Errorf("part %d has %d bytes", n, len(f.parts[n]))
		}
	}
	cm := f.complete
	if cm.ChecksumType != types.ChecksumTypeFullObject || aws.ToString(cm.ChecksumCRC32C) != crcOf(data) ||
		aws.ToInt64(cm.MpuObjectSize) != int64(len(data)) || len(cm.MultipartUpload.Parts) != parts {
		t.Errorf("CompleteMultipartUpload input %+v", cm)
	}
	for i, p := range cm.MultipartUpload.Parts {
		if aws.ToInt32(p.PartNumber) != int32(i+1) || aws.ToString(p.ChecksumCRC32C) != crcOf(f.parts[int32(i+1)]) {
			t.Errorf("completed part %d: %+v", i, p)
		}
	}
	if !bytes.Equal(f.object, data) {
		t.Error("the object differs from the data")
	}
	if res.ChecksumCRC32C != crcOf(data) || strings.Contains(res.ChecksumCRC32C, "-") || res.ETag != `"etag-mpu"` {
		t.Errorf("result %+v, want crc %s", res, crcOf(data))
	}
	if f.maxInFlight > DefaultUploadConcurrency {
		t.Errorf("%d parts in flight, at most %d allowed", f.maxInFlight, DefaultUploadConcurrency)
	}
}

func TestPutMultipart(t *testing.T) {
	const partSize = testPartSize
	data := randomBytes(10*partSize + 12345)
	bodies := map[string]func(t *testing.T) (io.Reader, int64){
		"file":                func(t *testing.T) (io.Reader, int64) { return tempFile(t, data), int64(len(data)) },
		"file, size unknown":  func(t *testing.T) (io.Reader, int64) { return tempFile(t, data), -1 },
		"bytes.Reader":        func(t *testing.T) (io.Reader, int64) { return bytes.NewReader(data), int64(len(data)) },
		"stream":              func(t *testing.T) (io.Reader, int64) { return onlyReader{bytes.NewReader(data)}, int64(len(data)) },
		"stream, size unkown": func(t *testing.T) (io.Reader, int64) { return onlyReader{bytes.NewReader(data)}, -1 },
		"file at an offset": func(t *testing.T) (io.Reader, int64) {
			f := tempFile(t, append([]byte("header to skip"), data...))
			if _, err := f.Seek(int64(len("header to skip")), io.SeekStart); err != nil {
				t.Fatal(err)
			}
			return f, -1
		},
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			f := newFakeS3()
			w, _ := testWriter(f, Settings{})
			r, size := body(t)
			var prog progress
			res, err := w.Put(context.Background(), Object{Key: "p/t/0.parquet", Body: r, Size: size, PartSize: partSize,
				ContentType: "application/vnd.apache.parquet", OnProgress: prog.add})
			if err != nil {
				t.Fatal(err)
			}
			checkMultipart(t, f, data, partSize, res)
			if prog.n.Load() != int64(len(data)) {
				t.Errorf("progress %d, want %d", prog.n.Load(), len(data))
			}
		})
	}
}

func TestPutOfExactlyOnePartIsOnePutObject(t *testing.T) {
	data := randomBytes(testPartSize)
	for name, r := range map[string]io.Reader{"stream": onlyReader{bytes.NewReader(data)}, "bytes": bytes.NewReader(data)} {
		f := newFakeS3()
		w, _ := testWriter(f, Settings{})
		res, err := w.Put(context.Background(), Object{Key: "k", Body: r, Size: -1, PartSize: testPartSize})
		if err != nil || !slices.Equal(f.calls, []string{"PutObject"}) || res.ChecksumCRC32C != crcOf(data) || !bytes.Equal(f.object, data) {
			t.Errorf("%s: %v, calls %v", name, err, f.calls)
		}
	}
}

func TestPartFailureLeavesTheUploadWithoutAbort(t *testing.T) {
	if _, ok := reflect.TypeFor[s3API]().MethodByName("AbortMultipartUpload"); ok {
		t.Fatal("the upload path must not be able to abort: the customer does not grant s3:AbortMultipartUpload")
	}
	data := randomBytes(6 * testPartSize)
	f := newFakeS3()
	f.fail["UploadPart 2"] = apiErr(403, "AccessDenied", "Access Denied")
	f.stuck = true // the other parts are in flight when part 2 fails
	w, inv := testWriter(f, Settings{})
	_, err := w.Put(context.Background(), Object{Key: "k", Body: tempFile(t, data), Size: int64(len(data)), PartSize: testPartSize})
	e, ok := failure.As(err)
	if !ok || e.Kind != failure.KindPutDenied {
		t.Fatalf("error %v, want %s", err, failure.KindPutDenied)
	}
	if slices.Contains(f.calls, "CompleteMultipartUpload") || f.calls[0] != "CreateMultipartUpload" {
		t.Errorf("calls %v", f.calls)
	}
	if strings.Count(strings.Join(f.calls, ","), "UploadPart 2") != 1 || inv.n.Load() != 0 {
		t.Errorf("a denied part must not be retried here: calls %v, invalidations %d", f.calls, inv.n.Load())
	}
	// The parts in flight wait for cancellation, so any part beyond the slots of the
	// concurrency limit would have been started after the failure.
	if len(f.calls) > 1+DefaultUploadConcurrency {
		t.Errorf("parts went on after the failure: %v", f.calls)
	}
}

func TestStaleCredentialsAreDroppedAndTheRequestRetriedOnce(t *testing.T) {
	expired := apiErr(400, "ExpiredToken", "The provided token has expired.")
	t.Run("put", func(t *testing.T) {
		data := randomBytes(1000)
		f := newFakeS3()
		f.fail["PutObject"] = expired
		w, inv := testWriter(f, Settings{})
		res, err := w.Put(context.Background(), Object{Key: "k", Body: bytes.NewReader(data), Size: 1000})
		if err != nil || inv.n.Load() != 1 || len(f.calls) != 2 || !bytes.Equal(f.object, data) || res.ChecksumCRC32C != crcOf(data) {
			t.Errorf("err %v, invalidations %d, calls %v", err, inv.n.Load(), f.calls)
		}
	})
	t.Run("part", func(t *testing.T) {
		data := randomBytes(3 * testPartSize)
		f := newFakeS3()
		f.fail["UploadPart 3"] = apiErr(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
		w, inv := testWriter(f, Settings{})
		res, err := w.Put(context.Background(), Object{Key: "k", Body: onlyReader{bytes.NewReader(data)}, Size: -1, PartSize: testPartSize})
		if err != nil || inv.n.Load() != 1 || !bytes.Equal(f.object, data) || res.ChecksumCRC32C != crcOf(data) {
			t.Errorf("err %v, invalidations %d, calls %v", err, inv.n.Load(), f.calls)
		}
	})
	t.Run("complete", func(t *testing.T) {
		data := randomBytes(2 * testPartSize)
		f := newFakeS3()
		f.fail["CompleteMultipartUpload"] = apiErr(400, "TokenRefreshRequired", "refresh")
		w, inv := testWriter(f, Settings{})
		if _, err := w.Put(context.Background(), Object{Key: "k", Body: bytes.NewReader(data), Size: -1, PartSize: testPartSize}); err != nil || inv.n.Load() != 1 {
			t.Errorf("err %v, invalidations %d, calls %v", err, inv.n.Load(), f.calls)
		}
	})
	t.Run("fresh credentials refused too", func(t *testing.T) {
		f := newFakeS3()
		f.fail["PutObject"] = apiErr(403, "InvalidToken", "The provided token is malformed or otherwise invalid.")
		f.failTimes["PutObject"] = 5
		w, inv := testWriter(f, Settings{})
		_, err := w.Put(context.Background(), Object{Key: "k", Body: bytes.NewReader([]byte("x")), Size: 1})
		e, ok := failure.As(err)
		if !ok || e.Kind != failure.KindTransient || len(f.calls) != 2 || inv.n.Load() != 2 {
			t.Errorf("err %v, calls %v, invalidations %d", err, f.calls, inv.n.Load())
		}
	})
}

func TestChecksumMismatchIsTransient(t *testing.T) {
	for _, call := range []string{"PutObject", "UploadPart 2", "CompleteMultipartUpload"} {
		t.Run(call, func(t *testing.T) {
			f := newFakeS3()
			f.answer[call] = "AAAAAA=="
			w, _ := testWriter(f, Settings{})
			size := 1000
			if call != "PutObject" {
				size = 2*testPartSize + 1
			}
			_, err := w.Put(context.Background(), Object{Key: "k", Body: bytes.NewReader(randomBytes(size)), Size: int64(size), PartSize: testPartSize})
			e, ok := failure.As(err)
			if !ok || e.Kind != failure.KindTransient || !strings.Contains(e.Message, "answered CRC32C AAAAAA==") {
				t.Errorf("error %v", err)
			}
		})
	}
	// A server that ignored FULL_OBJECT answers a COMPOSITE checksum: each part's CRC32C was
	// verified, and the receipt still gets the whole object's.
	f := newFakeS3()
	f.answer["CompleteMultipartUpload"] = "x5N2Dw==-3"
	w, _ := testWriter(f, Settings{})
	data := randomBytes(2*testPartSize + 1)
	res, err := w.Put(context.Background(), Object{Key: "k", Body: bytes.NewReader(data), Size: -1, PartSize: testPartSize})
	if err != nil || res.ChecksumCRC32C != crcOf(data) {
		t.Errorf("composite answer: %+v %v", res, err)
	}
}

func TestChecksumWhenRequiredSendsNoChecksumButReportsIt(t *testing.T) {
	data := randomBytes(2*testPartSize + 7)
	f := newFakeS3()
	w, _ := testWriter(f, Settings{ChecksumWhenRequired: true})
	res, err := w.Put(context.Background(), Object{Key: "k", Body: bytes.NewReader(data), Size: int64(len(data)), PartSize: testPartSize})
	if err != nil || res.ChecksumCRC32C != crcOf(data) {
		t.Fatalf("%+v %v", res, err)
	}
	if f.create.ChecksumAlgorithm != "" || f.create.ChecksumType != "" || f.complete.ChecksumCRC32C != nil || f.complete.ChecksumType != "" {
		t.Errorf("checksums sent: %+v %+v", f.create, f.complete)
	}
	for _, u := range f.uploads {
		if u.ChecksumCRC32C != nil || u.ChecksumAlgorithm != "" {
			t.Errorf("part checksum sent: %+v", u)
		}
	}
	for _, p := range f.complete.MultipartUpload.Parts {
		if p.ChecksumCRC32C != nil {
			t.Errorf("completed part checksum sent: %+v", p)
		}
	}
}

// failingReader fails after some bytes, like a disk error.
type failingReader struct{ left int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.ErrClosedPipe
	}
	n := min(len(p), r.left)
	r.left -= n
	return n, nil
}

func TestReadErrorsAndShortBodies(t *testing.T) {
	f := newFakeS3()
	w, _ := testWriter(f, Settings{})
	_, err := w.Put(context.Background(), Object{Key: "k", Body: &failingReader{left: 3 * testPartSize}, Size: -1, PartSize: testPartSize})
	if e, ok := failure.As(err); !ok || e.Kind != failure.KindTransient || slices.Contains(f.calls, "CompleteMultipartUpload") {
		t.Errorf("read error: %v, calls %v", err, f.calls)
	}
	f = newFakeS3()
	w, _ = testWriter(f, Settings{})
	_, err = w.Put(context.Background(), Object{Key: "k", Body: bytes.NewReader([]byte("short")), Size: 10})
	if err == nil || !strings.Contains(err.Error(), "Object.Size says 10") || len(f.calls) != 0 {
		t.Errorf("short body: %v, calls %v", err, f.calls)
	}
}

func TestCancelledPutIsNotClassified(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f := newFakeS3()
	f.fail["PutObject"] = ctx.Err()
	w, _ := testWriter(f, Settings{})
	_, err := w.Put(ctx, Object{Key: "k", Body: bytes.NewReader([]byte("x")), Size: 1})
	if _, ok := failure.As(err); ok || !errors.Is(err, context.Canceled) {
		t.Errorf("error %v", err)
	}
}

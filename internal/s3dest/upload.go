package s3dest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/dreamdata/destination-aws-s3/internal/failure"
)

// s3API is the part of *s3.Client the upload path calls: writes only. There is no
// AbortMultipartUpload (the customer does not grant it): a failed upload's parts are left to
// the bucket's lifecycle rule.
type s3API interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	CreateMultipartUpload(ctx context.Context, in *s3.CreateMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error)
	UploadPart(ctx context.Context, in *s3.UploadPartInput, optFns ...func(*s3.Options)) (*s3.UploadPartOutput, error)
	CompleteMultipartUpload(ctx context.Context, in *s3.CompleteMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error)
}

// invalidator drops cached credentials (*aws.CredentialsCache).
type invalidator interface{ Invalidate() }

type bucketWriter struct {
	api    s3API
	creds  invalidator
	target Target
	// checksums: send the CRC32C headers (off with Settings.ChecksumWhenRequired).
	checksums    bool
	concurrency  int
	stallTimeout time.Duration
	// minPartSize is MinPartSize; tests lower it to keep their objects small.
	minPartSize int64
}

func newBucketWriter(api s3API, creds invalidator, t Target, s Settings) *bucketWriter {
	return &bucketWriter{api: api, creds: creds, target: t, checksums: !s.ChecksumWhenRequired,
		concurrency: DefaultUploadConcurrency, stallTimeout: StallTimeout, minPartSize: MinPartSize}
}

// Put writes one object with the bucket-owner-full-control ACL, so the customer owns what we
// write, SSE-KMS when the account has a key, and the object's CRC32C, which S3 verifies and
// stores as a FULL_OBJECT checksum.
//
// The CRC32C is computed first (one read of a file body), so that every request carries its
// checksum: a single PutObject for objects up to the part size; above it a multipart upload
// whose parts carry their own CRC32C and whose completion carries the whole object's, which
// S3 checks against the parts it combined.
func (w *bucketWriter) Put(ctx context.Context, obj Object) (PutResult, error) {
	if obj.Fence != nil {
		if err := obj.Fence(); err != nil {
			return PutResult{}, err
		}
		ctx = withFence(ctx, obj.Fence)
	}
	res, err := w.put(ctx, obj)
	if err == nil {
		return res, nil
	}
	var fe *fencedError
	if errors.As(err, &fe) {
		return PutResult{}, fe.err // the caller's own verdict, whatever the SDK wrapped it in
	}
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return PutResult{}, err // the caller gave up; nothing to explain
	}
	if _, ok := failure.As(err); ok {
		return PutResult{}, err
	}
	where := fmt.Sprintf("s3://%s/%s", w.target.Bucket, obj.Key)
	var st *stallError
	if errors.As(err, &st) {
		return PutResult{}, failure.New(failure.KindStalled, err,
			"writing %s stalled (a half-open connection or a hung server), also when tried again on a new connection", where)
	}
	return PutResult{}, classifyPut(err, opContext{account: w.target.AccountID, roleARN: w.target.RoleARN,
		bucket: w.target.Bucket, prefix: w.target.Prefix, key: obj.Key, region: w.target.Region, kmsKey: w.target.KMSKeyID})
}

func (w *bucketWriter) put(ctx context.Context, obj Object) (PutResult, error) {
	src, err := partsOf(obj, w.minPartSize)
	if err != nil {
		return PutResult{}, err
	}
	first, err := src.next()
	if err != nil {
		return PutResult{}, err // every object, even an empty one, has a first part
	}
	second, err := src.next()
	if errors.Is(err, io.EOF) {
		return w.putSingle(ctx, obj, first)
	}
	if err != nil {
		return PutResult{}, err
	}
	return w.putMultipart(ctx, obj, src, first, second)
}

// partsOf picks how to read the object's body.
func partsOf(obj Object, minPartSize int64) (partSource, error) {
	size := obj.Size
	partSize := partSizeOf(obj.PartSize, size, minPartSize)
	if obj.Body == nil {
		return &streamParts{r: bytes.NewReader(nil), partSize: partSize}, nil
	}
	if ra, ok := obj.Body.(io.ReaderAt); ok {
		start, seekable := int64(0), true
		if s, ok := obj.Body.(io.Seeker); ok {
			var err error
			if start, err = s.Seek(0, io.SeekCurrent); err != nil {
				seekable = false // a pipe or a socket: read it as a stream
			} else if size < 0 {
				end, err := s.Seek(0, io.SeekEnd)
				if err != nil {
					return nil, fmt.Errorf("find the object's size: %w", err)
				}
				if _, err := s.Seek(start, io.SeekStart); err != nil {
					return nil, fmt.Errorf("find the object's size: %w", err)
				}
				size = end - start
				partSize = partSizeOf(obj.PartSize, size, minPartSize)
			}
		}
		if seekable && size >= 0 {
			return newSectionParts(ra, start, size, partSize)
		}
	}
	return &streamParts{r: obj.Body, partSize: partSize}, nil
}

// partSizeOf is the part size for an object: the one asked for or PartSizeFor(size), within
// S3's limits (minPartSize to MaxPartSize), and large enough for MaxParts parts to hold the
// object.
func partSizeOf(asked, size, minPartSize int64) int64 {
	p := asked
	if p <= 0 {
		p = PartSizeFor(size)
	}
	if size > 0 && (size+p-1)/p > MaxParts {
		const mib = 1 << 20
		p = ((size+MaxParts-1)/MaxParts + mib - 1) / mib * mib
	}
	return min(max(p, minPartSize), MaxPartSize)
}

// sseKMS is the encryption every object is written with: the account's KMS key, or the
// bucket's default encryption when it has none.
func (w *bucketWriter) sseKMS() (types.ServerSideEncryption, *string) {
	if w.target.KMSKeyID == "" {
		return "", nil
	}
	return types.ServerSideEncryptionAwsKms, aws.String(w.target.KMSKeyID)
}

// optional leaves an empty header unsent.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

func (w *bucketWriter) putSingle(ctx context.Context, obj Object, p part) (PutResult, error) {
	sum := encodeCRC32C(p.crc)
	in := &s3.PutObjectInput{
		Bucket:        aws.String(w.target.Bucket),
		Key:           aws.String(obj.Key),
		Body:          p.body,
		ContentLength: aws.Int64(p.size),
		ACL:           types.ObjectCannedACLBucketOwnerFullControl,
		ContentType:   optional(obj.ContentType),
	}
	in.ServerSideEncryption, in.SSEKMSKeyId = w.sseKMS()
	if w.checksums {
		in.ChecksumAlgorithm = types.ChecksumAlgorithmCrc32c
		in.ChecksumCRC32C = aws.String(sum)
	}
	var out *s3.PutObjectOutput
	err := w.call(ctx, p.body, obj.OnProgress, func(ctx context.Context) (err error) {
		out, err = w.api.PutObject(ctx, in)
		return err
	})
	if err != nil {
		return PutResult{}, err
	}
	if err := w.confirm(obj.Key, "PutObject", sum, aws.ToString(out.ChecksumCRC32C)); err != nil {
		return PutResult{}, err
	}
	return PutResult{ETag: aws.ToString(out.ETag), ChecksumCRC32C: sum}, nil
}

// confirm compares the checksum S3 answered with ours. An empty answer confirms nothing but
// is no error: S3 echoes only checksums it was sent.
func (w *bucketWriter) confirm(key, op, want, got string) error {
	if got == "" || got == want {
		return nil
	}
	return failure.New(failure.KindTransient, nil,
		"writing s3://%s/%s: %s answered CRC32C %s, the object's is %s: the bytes changed on the way; the write is retried",
		w.target.Bucket, key, op, got, want)
}

func (w *bucketWriter) putMultipart(ctx context.Context, obj Object, src partSource, first, second part) (PutResult, error) {
	create := &s3.CreateMultipartUploadInput{
		Bucket:      aws.String(w.target.Bucket),
		Key:         aws.String(obj.Key),
		ACL:         types.ObjectCannedACLBucketOwnerFullControl,
		ContentType: optional(obj.ContentType),
	}
	create.ServerSideEncryption, create.SSEKMSKeyId = w.sseKMS()
	if w.checksums {
		create.ChecksumAlgorithm = types.ChecksumAlgorithmCrc32c
		create.ChecksumType = types.ChecksumTypeFullObject
	}
	var created *s3.CreateMultipartUploadOutput
	err := w.call(ctx, nil, nil, func(ctx context.Context) (err error) {
		created, err = w.api.CreateMultipartUpload(ctx, create)
		return err
	})
	if err != nil {
		return PutResult{}, err
	}
	uploadID := created.UploadId

	// Parts upload concurrently, at most w.concurrency at once; a part is read (or, for a
	// stream, buffered) only once a slot is free. The first failure cancels the others.
	// Nothing is aborted: the parts stay until the bucket's lifecycle rule removes them.
	pctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	slots := make(chan struct{}, max(w.concurrency, 1))
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		done  []types.CompletedPart
		total int64
	)
	ahead := []part{first, second}
	next := func() (part, error) {
		if len(ahead) > 0 {
			p := ahead[0]
			ahead = ahead[1:]
			return p, nil
		}
		return src.next()
	}
	for pctx.Err() == nil {
		select {
		case slots <- struct{}{}:
		case <-pctx.Done():
			continue
		}
		if pctx.Err() != nil {
			<-slots
			break
		}
		p, err := next()
		if err != nil {
			<-slots
			if !errors.Is(err, io.EOF) {
				cancel(err)
			}
			break
		}
		total += p.size
		wg.Go(func() {
			defer func() { <-slots }()
			cp, err := w.uploadPart(pctx, obj, uploadID, p)
			if err != nil {
				cancel(err)
				return
			}
			mu.Lock()
			done = append(done, cp)
			mu.Unlock()
		})
	}
	wg.Wait()
	if pctx.Err() != nil {
		return PutResult{}, context.Cause(pctx)
	}

	sum := encodeCRC32C(src.sum())
	slices.SortFunc(done, func(a, b types.CompletedPart) int { return int(aws.ToInt32(a.PartNumber) - aws.ToInt32(b.PartNumber)) })
	complete := &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(w.target.Bucket),
		Key:             aws.String(obj.Key),
		UploadId:        uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done},
	}
	if w.checksums {
		complete.ChecksumType = types.ChecksumTypeFullObject
		complete.ChecksumCRC32C = aws.String(sum)
		// S3 refuses to assemble an object of another size; like the checksums, a newer
		// header that older compatible servers may reject.
		complete.MpuObjectSize = aws.Int64(total)
	}
	var out *s3.CompleteMultipartUploadOutput
	err = w.call(ctx, nil, nil, func(ctx context.Context) (err error) {
		out, err = w.api.CompleteMultipartUpload(ctx, complete)
		return err
	})
	if err != nil {
		return PutResult{}, err
	}
	got := aws.ToString(out.ChecksumCRC32C)
	if strings.Contains(got, "-") {
		// A COMPOSITE checksum ("<crc of part crcs>-<parts>"): the server ignored
		// FULL_OBJECT. It did verify every part's CRC32C, and ours is of the same bytes.
		got = ""
	}
	if err := w.confirm(obj.Key, "CompleteMultipartUpload", sum, got); err != nil {
		return PutResult{}, err
	}
	return PutResult{ETag: aws.ToString(out.ETag), ChecksumCRC32C: sum}, nil
}

func (w *bucketWriter) uploadPart(ctx context.Context, obj Object, uploadID *string, p part) (types.CompletedPart, error) {
	sum := encodeCRC32C(p.crc)
	in := &s3.UploadPartInput{
		Bucket:        aws.String(w.target.Bucket),
		Key:           aws.String(obj.Key),
		UploadId:      uploadID,
		PartNumber:    aws.Int32(p.number),
		Body:          p.body,
		ContentLength: aws.Int64(p.size),
	}
	if w.checksums {
		in.ChecksumAlgorithm = types.ChecksumAlgorithmCrc32c
		in.ChecksumCRC32C = aws.String(sum)
	}
	var out *s3.UploadPartOutput
	err := w.call(ctx, p.body, obj.OnProgress, func(ctx context.Context) (err error) {
		out, err = w.api.UploadPart(ctx, in)
		return err
	})
	if err != nil {
		return types.CompletedPart{}, fmt.Errorf("part %d: %w", p.number, err)
	}
	if err := w.confirm(obj.Key, fmt.Sprintf("UploadPart %d", p.number), sum, aws.ToString(out.ChecksumCRC32C)); err != nil {
		return types.CompletedPart{}, err
	}
	cp := types.CompletedPart{PartNumber: aws.Int32(p.number), ETag: out.ETag}
	if w.checksums {
		cp.ChecksumCRC32C = aws.String(sum)
	}
	return cp, nil
}

// call runs one S3 request. A request with a body runs under a stall guard that cancels it
// when its body stops moving, and reports the body's bytes to onProgress. The request is
// run once more, with its body rewound, when S3 refuses the cached credentials (they are
// dropped first, so the retry signs with fresh ones from STS) or when its body stalled (the
// cancelled connection is not reused). The SDK's own retries happen inside each run.
func (w *bucketWriter) call(ctx context.Context, body io.Seeker, onProgress func(int64), do func(context.Context) error) error {
	var err error
	for try := 0; try < 2; try++ {
		if body != nil {
			if _, err := body.Seek(0, io.SeekStart); err != nil {
				return fmt.Errorf("rewind the request body: %w", err)
			}
		}
		err = w.callOnce(ctx, body != nil, onProgress, do)
		if err == nil || ctx.Err() != nil {
			return err
		}
		var st *stallError
		switch {
		case answerOf(err).staleCredentials():
			if w.creds != nil {
				w.creds.Invalidate()
			}
		case errors.As(err, &st):
		default:
			return err
		}
	}
	return err
}

func (w *bucketWriter) callOnce(ctx context.Context, watched bool, onProgress func(int64), do func(context.Context) error) error {
	if !watched {
		return do(ctx)
	}
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watch := &bodyWatch{onProgress: onProgress, timeout: w.stallTimeout, stalled: func() { cancel(errStalled) }}
	err := do(withBodyWatch(rctx, watch))
	watch.disarm()
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(rctx), errStalled) {
		return &stallError{after: w.stallTimeout, err: err}
	}
	return err
}

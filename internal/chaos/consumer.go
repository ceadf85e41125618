package chaos

import (
	"context"
	"encoding/json"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/dreamdata/destination-aws-s3/internal/layout"
	"github.com/dreamdata/destination-aws-s3/internal/receipt"
)

// consumer plays the customer's S3 trigger on receipt.json: the moment MinIO accepts a root
// receipt (the fault proxy reports the write), it reads the receipt and checks that every
// table folder it names already holds exactly the listed files, whole. The end-of-dump check
// comes later; this one sees the bucket as a consumer racing the exporter does.
type consumer struct {
	c *campaign

	mu       sync.Mutex
	accounts []*account // set by start, once the accounts exist
	v        *verifier
	inFlight int
	closed   bool
	checked  int
}

// start arms the consumer for these accounts.
func (k *consumer) start(accounts []*account, v *verifier) {
	k.mu.Lock()
	k.accounts, k.v = accounts, v
	k.mu.Unlock()
}

// onWrite is the fault proxy's OnWrite hook.
func (k *consumer) onWrite(bucket, key string) {
	k.mu.Lock()
	var a *account
	for _, acc := range k.accounts {
		if layout.ReceiptKey(acc.acc.Prefix) == key && acc.acc.Bucket == bucket {
			a = acc
		}
	}
	if a == nil || k.closed {
		k.mu.Unlock()
		return // a shard or a dump folder's receipt copy
	}
	v := k.v
	k.inFlight++
	k.mu.Unlock()
	defer func() {
		k.mu.Lock()
		k.inFlight--
		k.checked++
		k.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	k.check(ctx, v, key)
}

func (k *consumer) check(ctx context.Context, v *verifier, key string) {
	body, err := v.get(ctx, key)
	if err != nil {
		k.c.mismatch("consumer triggered by %s: %v", key, err)
		return
	}
	var r receipt.Receipt
	if err := json.Unmarshal(body, &r); err != nil {
		k.c.mismatch("consumer triggered by %s: the receipt does not decode: %v", key, err)
		return
	}
	if err := r.Check(); err != nil {
		k.c.mismatch("consumer triggered by %s (receipt %s): %v", key, r.Timestamp, err)
	}
	names := make([]string, 0, len(r.Tables))
	for n := range r.Tables {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		t := r.Tables[name]
		keys, err := v.list(ctx, t.Folder+"/")
		if err != nil {
			k.c.mismatch("consumer triggered by %s: %v", key, err)
			return
		}
		listed := map[string]bool{}
		for _, key := range keys {
			listed[key] = true
		}
		for _, f := range t.Files {
			if !listed[f.Key] {
				k.c.mismatch("consumer triggered by %s (receipt %s): %s is listed but not in the bucket yet", key, r.Timestamp, f.Key)
				continue
			}
			delete(listed, f.Key)
			h, err := v.root.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(v.bucket), Key: aws.String(f.Key)})
			if err != nil {
				k.c.mismatch("consumer triggered by %s: head %s: %v", key, f.Key, err)
				continue
			}
			if n := aws.ToInt64(h.ContentLength); n != f.Bytes {
				k.c.mismatch("consumer triggered by %s (receipt %s): %s has %d bytes, the receipt says %d", key, r.Timestamp, f.Key, n, f.Bytes)
			}
		}
		for extra := range listed {
			k.c.mismatch("consumer triggered by %s (receipt %s): %s is in %s but not in the receipt", key, r.Timestamp, extra, t.Folder)
		}
	}
}

// close stops taking triggers and waits (bounded) for the checks in flight; it returns how
// many receipts were checked.
func (k *consumer) close() int {
	k.mu.Lock()
	k.closed = true
	k.mu.Unlock()
	for i := 0; i < 600; i++ {
		k.mu.Lock()
		n := k.inFlight
		k.mu.Unlock()
		if n == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.checked
}

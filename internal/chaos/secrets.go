package chaos

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"strings"
	"sync"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// secret is one value that must never appear in a workflow history or a log. what names it
// in reports; the value itself is never printed.
type secret struct {
	what  string
	value string
	b64   string // the value in standard base64, filled in by add
}

// secretSearch looks for secrets in texts. Each secret is also searched in its standard
// base64 form, in case a payload carries it encoded.
type secretSearch struct {
	mu      sync.Mutex
	secrets []secret
	found   []string // "what" in "where", one line each
	seen    map[string]bool
	scanned struct{ texts, bytes int64 }
}

func newSecretSearch() *secretSearch { return &secretSearch{seen: map[string]bool{}} }

// add registers secrets (values shorter than 8 characters are skipped: they would match by
// chance and nothing that short is a credential).
func (s *secretSearch) add(secrets ...secret) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sec := range secrets {
		if len(sec.value) < 8 {
			continue
		}
		dup := false
		for _, have := range s.secrets {
			if have.value == sec.value {
				dup = true
				break
			}
		}
		if !dup {
			sec.b64 = base64.StdEncoding.EncodeToString([]byte(sec.value))
			s.secrets = append(s.secrets, sec)
		}
	}
}

func (s *secretSearch) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.secrets)
}

// scan searches one text, reporting each secret found once per place.
func (s *secretSearch) scan(where, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scanned.texts++
	s.scanned.bytes += int64(len(text))
	for _, sec := range s.secrets {
		if strings.Contains(text, sec.value) || strings.Contains(text, sec.b64) {
			key := sec.what + "\x00" + where
			if !s.seen[key] {
				s.seen[key] = true
				s.found = append(s.found, fmt.Sprintf("%s found in %s", sec.what, where))
			}
		}
	}
}

// findings returns what was found.
func (s *secretSearch) findings() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.found...)
}

// scanMessage searches a Temporal API message: its JSON form (every string field: failure
// messages, stack traces, names) and the decoded data of every Payload inside it (inputs,
// results, heartbeat details, failure details, memo, search attributes), which the JSON form
// only shows base64-encoded.
func (s *secretSearch) scanMessage(where string, m proto.Message) {
	js, err := protojson.Marshal(m)
	if err == nil {
		s.scan(where, string(js))
	}
	var payloads strings.Builder
	walkPayloads(m.ProtoReflect(), func(p *commonpb.Payload) {
		payloads.Write(p.GetData())
		payloads.WriteByte('\n')
		for k, v := range p.GetMetadata() {
			payloads.WriteString(k)
			payloads.Write(v)
			payloads.WriteByte('\n')
		}
	})
	if payloads.Len() > 0 {
		s.scan(where+" (decoded payloads)", payloads.String())
	}
}

var payloadName = (&commonpb.Payload{}).ProtoReflect().Descriptor().FullName()

// walkPayloads calls fn for every Payload in m, at any depth, in lists and maps too.
func walkPayloads(m protoreflect.Message, fn func(*commonpb.Payload)) {
	if m.Descriptor().FullName() == payloadName {
		if p, ok := m.Interface().(*commonpb.Payload); ok {
			fn(p)
		}
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				walkPayloads(l.Get(i).Message(), fn)
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				walkPayloads(mv.Message(), fn)
				return true
			})
		case fd.Message() != nil && !fd.IsList() && !fd.IsMap():
			walkPayloads(v.Message(), fn)
		}
		return true
	})
}

// scanHistory searches every event of a workflow's history. It returns how many events it
// read.
func (s *secretSearch) scanHistory(ctx context.Context, tc client.Client, workflowID, runID string) (int, error) {
	it := tc.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	n := 0
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return n, err
		}
		n++
		s.scanMessage(fmt.Sprintf("workflow %s event %d (%s)", workflowID, e.GetEventId(), e.GetEventType()), e)
	}
	return n, nil
}

// scanDescribe searches what DescribeWorkflowExecution shows: pending activities with their
// last heartbeat details and failures, memo, search attributes.
func (s *secretSearch) scanDescribe(workflowID string, d *workflowservice.DescribeWorkflowExecutionResponse) {
	s.scanMessage(fmt.Sprintf("workflow %s description (pending activities, heartbeats)", workflowID), d)
}

// scanFile searches a log file line by line. It returns how many lines it read.
func (s *secretSearch) scanFile(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	n := 0
	for sc.Scan() {
		n++
		s.scan(fmt.Sprintf("%s line %d", path, n), sc.Text())
	}
	return n, sc.Err()
}

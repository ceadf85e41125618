package chaos

import (
	"encoding/base64"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	failurepb "go.temporal.io/api/failure/v1"
	historypb "go.temporal.io/api/history/v1"
)

// TestSecretSearchReadsEveryPayload hides secrets where only decoded payloads show them: an
// activity input, heartbeat details inside a timeout failure's cause, and a memo.
func TestSecretSearchReadsEveryPayload(t *testing.T) {
	payload := func(s string) *commonpb.Payload {
		return &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"` + s + `"`)}
	}
	event := &historypb.HistoryEvent{EventId: 7, Attributes: &historypb.HistoryEvent_ActivityTaskFailedEventAttributes{
		ActivityTaskFailedEventAttributes: &historypb.ActivityTaskFailedEventAttributes{Failure: &failurepb.Failure{
			Message: "outer",
			Cause: &failurepb.Failure{Message: "inner", FailureInfo: &failurepb.Failure_TimeoutFailureInfo{
				TimeoutFailureInfo: &failurepb.TimeoutFailureInfo{LastHeartbeatDetails: &commonpb.Payloads{
					Payloads: []*commonpb.Payload{payload("token-in-heartbeat-0001")}}}}},
		}}}}
	started := &historypb.HistoryEvent{EventId: 1, Attributes: &historypb.HistoryEvent_WorkflowExecutionStartedEventAttributes{
		WorkflowExecutionStartedEventAttributes: &historypb.WorkflowExecutionStartedEventAttributes{
			Input: &commonpb.Payloads{Payloads: []*commonpb.Payload{payload("input-secret-0002")}},
			Memo:  &commonpb.Memo{Fields: map[string]*commonpb.Payload{"m": payload("memo-secret-0003")}},
		}}}
	s := newSecretSearch()
	s.add(secret{what: "heartbeat token", value: "token-in-heartbeat-0001"}, secret{what: "input", value: "input-secret-0002"},
		secret{what: "memo", value: "memo-secret-0003"}, secret{what: "absent", value: "never-anywhere-0004"}, secret{what: "short", value: "abc"})
	s.scanMessage("event 7", event)
	s.scanMessage("event 1", started)
	got := strings.Join(s.findings(), "\n")
	for _, want := range []string{"heartbeat token found in event 7", "input found in event 1", "memo found in event 1"} {
		if !strings.Contains(got, want) {
			t.Errorf("findings lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "absent") || s.count() != 4 {
		t.Errorf("findings %q, %d secrets (the short one must be skipped)", got, s.count())
	}
	if strings.Contains(got, "never-anywhere") || strings.Contains(got, "token-in-heartbeat") {
		t.Errorf("a finding prints a secret's value: %s", got)
	}

	// A secret carried base64-encoded is found too.
	s2 := newSecretSearch()
	s2.add(secret{what: "encoded", value: "plain-secret-0005"})
	s2.scan("log line", "x="+base64.StdEncoding.EncodeToString([]byte("plain-secret-0005")))
	if len(s2.findings()) != 1 {
		t.Errorf("base64 form not found: %v", s2.findings())
	}
}

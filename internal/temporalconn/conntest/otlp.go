package conntest

import (
	"io"
	"net/http"
	"sync"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// OTLPReceiver is a local OTLP/HTTP trace receiver (POST /v1/traces, protobuf): it records
// the names of the spans and the service.name of the resources that arrive.
type OTLPReceiver struct {
	mu       sync.Mutex
	spans    map[string]bool
	services map[string]bool
}

// NewOTLPReceiver is an empty receiver; serve it with httptest.NewServer.
func NewOTLPReceiver() *OTLPReceiver {
	return &OTLPReceiver{spans: map[string]bool{}, services: map[string]bool{}}
}

func (r *OTLPReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" {
		http.NotFound(w, req)
		return
	}
	body, _ := io.ReadAll(req.Body)
	var msg coltrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &msg); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	for _, rs := range msg.ResourceSpans {
		for _, a := range rs.GetResource().GetAttributes() {
			if a.Key == "service.name" {
				r.services[a.GetValue().GetStringValue()] = true
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				r.spans[s.Name] = true
			}
		}
	}
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	_, _ = w.Write(out)
}

// Span says whether a span of that name arrived.
func (r *OTLPReceiver) Span(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.spans[name]
}

// Service says whether spans of that service.name arrived.
func (r *OTLPReceiver) Service(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.services[name]
}

// Spans are the names of the spans that arrived.
func (r *OTLPReceiver) Spans() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for n := range r.spans {
		out = append(out, n)
	}
	return out
}

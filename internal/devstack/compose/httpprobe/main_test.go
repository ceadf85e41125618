package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestProbe(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()

	if err := probe(srv.URL+"/metrics", time.Second); err != nil {
		t.Fatalf("healthy endpoint: %v", err)
	}
	status = http.StatusServiceUnavailable
	if err := probe(srv.URL+"/metrics", time.Second); err == nil {
		t.Fatal("a 503 passed the probe")
	}
	if err := probe(srv.URL+"/other", time.Second); err == nil {
		t.Fatal("a 404 passed the probe")
	}
	srv.Close()
	if err := probe(srv.URL+"/metrics", time.Second); err == nil {
		t.Fatal("a closed port passed the probe")
	}
}

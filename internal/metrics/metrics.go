// Package metrics exposes the worker's Prometheus metrics: the Temporal SDK's own (through an
// adapter of its metrics handler) and the exporter's per-table throughput and failures.
// Labels never carry secrets; account ids are labels only on low-volume counters.
package metrics

import (
	"errors"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	sdkmetrics "go.temporal.io/sdk/client"
)

// Namespace prefixes the exporter's own metrics.
const Namespace = "s3export"

// Exporter records what the data path does. All methods are safe for concurrent use.
type Exporter struct {
	rows     *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	shards   *prometheus.CounterVec
	duration *prometheus.HistogramVec
	failures *prometheus.CounterVec
	dumps    *prometheus.CounterVec
}

// Registry holds every metric of one worker.
type Registry struct {
	*prometheus.Registry
	Exporter *Exporter
	temporal *vecs
}

// New creates a registry with the Go runtime and process collectors and the exporter's
// metrics.
func New() *Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	e := &Exporter{
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "rows_total",
			Help: "Rows written to customer buckets, by table."}, []string{"table"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "bytes_total",
			Help: "Parquet bytes uploaded to customer buckets, by table."}, []string{"table"}),
		shards: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "shards_total",
			Help: "Shards uploaded, by table."}, []string{"table"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "table_export_seconds",
			Help: "Duration of successful table exports (one activity attempt), by table.", Buckets: prometheus.ExponentialBuckets(1, 2, 16)}, []string{"table"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "failures_total",
			Help: "Failed activity attempts by table and failure class (a misconfiguration kind, or Transient)."}, []string{"table", "class"}),
		dumps: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "receipts_total",
			Help: "Complete dumps (receipt.json written), by account."}, []string{"account"}),
	}
	reg.MustRegister(e.rows, e.bytes, e.shards, e.duration, e.failures, e.dumps)
	return &Registry{Registry: reg, Exporter: e, temporal: &vecs{m: map[string]*vec{}}}
}

// ShardUploaded counts one uploaded shard.
func (e *Exporter) ShardUploaded(table string, rows, bytes int64) {
	if e == nil {
		return
	}
	e.shards.WithLabelValues(table).Inc()
	e.rows.WithLabelValues(table).Add(float64(rows))
	e.bytes.WithLabelValues(table).Add(float64(bytes))
}

// TableExported records a successful table export.
func (e *Exporter) TableExported(table string, d time.Duration) {
	if e == nil {
		return
	}
	e.duration.WithLabelValues(table).Observe(d.Seconds())
}

// Failed counts a failed attempt of class (a failure type such as PutObjectDenied).
func (e *Exporter) Failed(table, class string) {
	if e == nil {
		return
	}
	e.failures.WithLabelValues(table, class).Inc()
}

// ReceiptWritten counts a complete dump.
func (e *Exporter) ReceiptWritten(account string) {
	if e == nil {
		return
	}
	e.dumps.WithLabelValues(account).Inc()
}

// Handler serves the registry in the Prometheus text format.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.Registry, promhttp.HandlerOpts{Registry: r.Registry})
}

// Temporal adapts the registry to the Temporal SDK's metrics handler, so the SDK's own
// metrics (task latencies, poll counts, activity failures...) are served too.
func (r *Registry) Temporal() sdkmetrics.MetricsHandler {
	return &temporalHandler{reg: r.Registry, vecs: r.temporal}
}

type vecs struct {
	mu sync.Mutex
	m  map[string]*vec
}

// vec is one registered metric. Prometheus fixes a metric's label names at registration, so
// the first use decides them; later uses fill missing labels with "" and drop extra ones.
type vec struct {
	labels  []string
	counter *prometheus.CounterVec
	gauge   *prometheus.GaugeVec
	hist    *prometheus.HistogramVec
}

type temporalHandler struct {
	reg  *prometheus.Registry
	vecs *vecs
	tags map[string]string
}

func (h *temporalHandler) WithTags(tags map[string]string) sdkmetrics.MetricsHandler {
	merged := make(map[string]string, len(h.tags)+len(tags))
	for k, v := range h.tags {
		merged[k] = v
	}
	for k, v := range tags {
		merged[k] = v
	}
	return &temporalHandler{reg: h.reg, vecs: h.vecs, tags: merged}
}

func sanitize(name string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '_'
	}, name)
}

func (h *temporalHandler) get(kind, name string) *vec {
	name = sanitize(name)
	h.vecs.mu.Lock()
	defer h.vecs.mu.Unlock()
	if v, ok := h.vecs.m[kind+name]; ok {
		return v
	}
	labels := make([]string, 0, len(h.tags))
	for k := range h.tags {
		labels = append(labels, sanitize(k))
	}
	sort.Strings(labels)
	v := &vec{labels: labels}
	var c prometheus.Collector
	switch kind {
	case "counter":
		v.counter = prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: "Temporal SDK counter " + name}, labels)
		c = v.counter
	case "gauge":
		v.gauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: "Temporal SDK gauge " + name}, labels)
		c = v.gauge
	default:
		v.hist = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name + "_seconds", Help: "Temporal SDK timer " + name,
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}, labels)
		c = v.hist
	}
	if err := h.reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil // a name clash with another kind: drop this metric rather than crash
		}
	}
	h.vecs.m[kind+name] = v
	return v
}

func (v *vec) values(tags map[string]string) []string {
	out := make([]string, len(v.labels))
	for i, l := range v.labels {
		for k, val := range tags {
			if sanitize(k) == l {
				out[i] = val
			}
		}
	}
	return out
}

func (h *temporalHandler) Counter(name string) sdkmetrics.MetricsCounter {
	v := h.get("counter", name)
	return counterFunc(func(d int64) {
		if v != nil {
			v.counter.WithLabelValues(v.values(h.tags)...).Add(float64(d))
		}
	})
}

func (h *temporalHandler) Gauge(name string) sdkmetrics.MetricsGauge {
	v := h.get("gauge", name)
	return gaugeFunc(func(f float64) {
		if v != nil {
			v.gauge.WithLabelValues(v.values(h.tags)...).Set(f)
		}
	})
}

func (h *temporalHandler) Timer(name string) sdkmetrics.MetricsTimer {
	v := h.get("timer", name)
	return timerFunc(func(d time.Duration) {
		if v != nil {
			v.hist.WithLabelValues(v.values(h.tags)...).Observe(d.Seconds())
		}
	})
}

type counterFunc func(int64)

func (f counterFunc) Inc(d int64) { f(d) }

type gaugeFunc func(float64)

func (f gaugeFunc) Update(v float64) { f(v) }

type timerFunc func(time.Duration)

func (f timerFunc) Record(d time.Duration) { f(d) }

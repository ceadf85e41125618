// Package metrics exposes the worker's Prometheus metrics on one registry: the Temporal SDK's
// own, through the SDK's maintained tally contrib (go.temporal.io/sdk/contrib/tally) and
// tally's Prometheus reporter, named as the SDK dashboards expect; the exporter's per-table
// throughput and failures; the build; and the Go runtime and process collectors.
// Labels never carry secrets; account ids are labels only on low-volume counters.
//
// Temporal metric names are the SDK's (temporal_request, temporal_activity_execution_latency,
// temporal_workflow_task_schedule_to_start_latency, ...) sanitized for Prometheus, with
// counters ending in _total and timers in _seconds, as Prometheus histograms:
// temporal_request_total, temporal_activity_execution_latency_seconds_bucket. Every
// combination of tags is its own series: tally registers a metric with the tag names of its
// use, so nothing is blanked or merged. A use of a name with other tag names than an earlier
// use, which Prometheus cannot hold under one name, is counted in
// s3export_metric_registration_errors_total and reported to Options.OnError instead of
// being merged into the other series.
package metrics

import (
	"io"
	"net/http"
	"sync"
	"time"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/uber-go/tally/v4"
	tallyprom "github.com/uber-go/tally/v4/prometheus"
	"go.temporal.io/sdk/client"
	sdktally "go.temporal.io/sdk/contrib/tally"
)

// Namespace prefixes the exporter's own metrics.
const Namespace = "s3export"

// TemporalBuckets are the histogram buckets of the SDK's timers, in seconds: 1 ms to about
// 18 hours by powers of 4, since they time both millisecond RPCs and table exports that run
// for hours.
var TemporalBuckets = prometheus.ExponentialBuckets(0.001, 4, 14)

// sanitizeOptions are tally's Prometheus rules for metric and label names; label values stay
// as they are, since Prometheus takes any UTF-8 there: the dashboards show the task queue
// destination-aws-s3 as Temporal names it, not destination_aws_s3.
var sanitizeOptions = func() tally.SanitizeOptions {
	o := tallyprom.DefaultSanitizerOpts
	o.ValueCharacters = tally.ValidCharacters{Ranges: []tally.SanitizeRange{{0, unicode.MaxRune}}}
	return o
}()

// reportEvery is how often tally moves the SDK's values into the Prometheus metrics; a scrape
// sees them at most this late. Close reports what is left.
const reportEvery = time.Second

// Exporter records what the data path does. All methods are safe for concurrent use.
type Exporter struct {
	rows     *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	shards   *prometheus.CounterVec
	duration *prometheus.HistogramVec
	failures *prometheus.CounterVec
	dumps    *prometheus.CounterVec
}

// Options configure a Registry.
type Options struct {
	// OnError is told of each Temporal SDK metric that could not be registered (a name used
	// with other tag names than before, or as another kind). Nil ignores them; they are
	// counted either way.
	OnError func(error)
}

// Registry holds every metric of one worker.
type Registry struct {
	*prometheus.Registry
	Exporter *Exporter

	scope          tally.Scope
	closer         io.Closer
	closeOnce      sync.Once
	registerErrors prometheus.Counter
	onError        func(error)
}

// New creates a registry with the Go runtime and process collectors, the exporter's metrics
// and the Temporal SDK's reporter.
func New() *Registry { return NewWithOptions(Options{}) }

// NewWithOptions is New with options.
func NewWithOptions(o Options) *Registry {
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
	r := &Registry{Registry: reg, Exporter: e, onError: o.OnError,
		registerErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "metric_registration_errors_total",
			Help: "Temporal SDK metrics dropped because their name was registered before with other labels or as another kind."})}
	reg.MustRegister(r.registerErrors)

	reporter := tallyprom.NewReporter(tallyprom.Options{
		Registerer:              reg,
		DefaultTimerType:        tallyprom.HistogramTimerType,
		DefaultHistogramBuckets: TemporalBuckets,
		OnRegisterError:         r.registerError,
	})
	scope, closer := tally.NewRootScope(tally.ScopeOptions{
		CachedReporter:  reporter,
		Separator:       tallyprom.DefaultSeparator,
		SanitizeOptions: &sanitizeOptions,
	}, reportEvery)
	r.scope, r.closer = sdktally.NewPrometheusNamingScope(scope), closer
	return r
}

func (r *Registry) registerError(err error) {
	r.registerErrors.Inc()
	if r.onError != nil {
		r.onError(err)
	}
}

// Temporal is the Temporal SDK's metrics handler (client.Options.MetricsHandler), backed by
// this registry.
func (r *Registry) Temporal() client.MetricsHandler {
	return sdktally.NewMetricsHandler(r.scope)
}

// Close reports the SDK's last values and stops the reporting loop. The registry can still
// be scraped.
func (r *Registry) Close() error {
	var err error
	r.closeOnce.Do(func() { err = r.closer.Close() })
	return err
}

// SetBuildInfo publishes s3export_build_info{version,goversion,revision} 1, the usual way to
// see which build runs where and to join it onto other series.
func (r *Registry) SetBuildInfo(version, goVersion, revision string) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "build_info",
		Help:        "Always 1; its labels name the running build.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": goVersion, "revision": revision}})
	g.Set(1)
	r.MustRegister(g)
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

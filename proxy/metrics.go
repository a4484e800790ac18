package proxy

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the proxy's Prometheus series, kept in a registry per Proxy
// so that tests and several proxies in one process do not collide.
type metrics struct {
	reg *prometheus.Registry

	requests       *prometheus.CounterVec
	errors         *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	inflight       *prometheus.GaugeVec
	bytesIn        *prometheus.CounterVec
	bytesOut       *prometheus.CounterVec
	upstreamResp   *prometheus.CounterVec
	upstreamErrors *prometheus.CounterVec
	limited        *prometheus.CounterVec
}

func newMetrics(targets func() []*target) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "velox_proxy_requests_total", Help: "Requests answered, by route and status code.",
		}, []string{"route", "upstream", "code"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "velox_proxy_request_errors_total", Help: "Requests the proxy answered with an error of its own, by route and reason.",
		}, []string{"route", "upstream", "reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "velox_proxy_request_duration_seconds",
			Help:    "Time from request to the end of the response, by route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"route", "upstream"}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "velox_proxy_requests_in_flight", Help: "Requests being served, by route.",
		}, []string{"route", "upstream"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "velox_proxy_request_body_bytes_total", Help: "Request body bytes received from clients, by route.",
		}, []string{"route", "upstream"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "velox_proxy_response_body_bytes_total", Help: "Response body bytes sent to clients, by route.",
		}, []string{"route", "upstream"}),
		upstreamResp: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "velox_proxy_upstream_responses_total", Help: "Responses received from upstream targets, by status code.",
		}, []string{"pool", "target", "code"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "velox_proxy_upstream_errors_total", Help: "Failed exchanges with upstream targets (no response).",
		}, []string{"pool", "target"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "velox_proxy_limited_total", Help: "Requests and connections refused by a limit, by limit.",
		}, []string{"limit"}),
	}
	m.reg.MustRegister(m.requests, m.errors, m.duration, m.inflight, m.bytesIn, m.bytesOut,
		m.upstreamResp, m.upstreamErrors, m.limited, &targetCollector{targets: targets},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) upstreamError(pool, target string) {
	m.upstreamErrors.WithLabelValues(pool, target).Inc()
}

// forgetTarget drops the series of a target that left the configuration.
func (m *metrics) forgetTarget(pool, target string) {
	l := prometheus.Labels{"pool": pool, "target": target}
	m.upstreamResp.DeletePartialMatch(l)
	m.upstreamErrors.DeletePartialMatch(l)
}

var (
	healthDesc = prometheus.NewDesc("velox_proxy_upstream_healthy",
		"1 when the target takes requests (active check passing and not ejected).", []string{"pool", "target"}, nil)
	targetInflightDesc = prometheus.NewDesc("velox_proxy_upstream_in_flight",
		"Requests in flight to the target.", []string{"pool", "target"}, nil)
)

// targetCollector reads health and load from the live targets at scrape
// time, so targets removed by a reload disappear without bookkeeping.
type targetCollector struct{ targets func() []*target }

func (c *targetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- healthDesc
	ch <- targetInflightDesc
}

func (c *targetCollector) Collect(ch chan<- prometheus.Metric) {
	for _, t := range c.targets() {
		up := 0.0
		if t.up() {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(healthDesc, prometheus.GaugeValue, up, t.pool, t.url.Host)
		ch <- prometheus.MustNewConstMetric(targetInflightDesc, prometheus.GaugeValue, float64(t.inflight.Load()), t.pool, t.url.Host)
	}
}

// routeMetrics are one route's series, resolved once per configuration so
// that serving a request does no label hashing.
type routeMetrics struct {
	m               *metrics
	route, upstream string
	duration        prometheus.Observer
	inflight        prometheus.Gauge
	bytesIn         prometheus.Counter
	bytesOut        prometheus.Counter
	codes           sync.Map // int -> prometheus.Counter
}

func (m *metrics) forRoute(route, upstream string) *routeMetrics {
	return &routeMetrics{
		m: m, route: route, upstream: upstream,
		duration: m.duration.WithLabelValues(route, upstream),
		inflight: m.inflight.WithLabelValues(route, upstream),
		bytesIn:  m.bytesIn.WithLabelValues(route, upstream),
		bytesOut: m.bytesOut.WithLabelValues(route, upstream),
	}
}

func (rm *routeMetrics) code(c int) prometheus.Counter {
	if v, ok := rm.codes.Load(c); ok {
		return v.(prometheus.Counter)
	}
	ctr := rm.m.requests.WithLabelValues(rm.route, rm.upstream, statusLabel(c))
	rm.codes.Store(c, ctr)
	return ctr
}

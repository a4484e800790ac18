package server

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/veloxhq/velox/internal/files"
	"github.com/veloxhq/velox/internal/storage"
)

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	bytesIn  prometheus.Counter
	bytesOut prometheus.Counter
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "velox_http_requests_total", Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "velox_http_request_duration_seconds", Help: "HTTP request latency by route and method.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10, 60},
		}, []string{"route", "method"}),
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "velox_http_request_bytes_total", Help: "Bytes received in request bodies.",
		}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "velox_http_response_bytes_total", Help: "Bytes sent in response bodies.",
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.bytesIn, m.bytesOut,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "velox_uploads_in_progress", Help: "Uploads currently streaming into storage.",
		}, func() float64 { return float64(files.UploadsInFlight()) }),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{})
}

// statusWriter records the status and body size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// ReadFrom passes net/http's own ReadFrom through: http.ServeContent
// copies a plain local file with io.Copy, and only the connection's
// ReadFrom sends it with sendfile(2), without copying it through the
// process. A wrapper without ReadFrom turns that into 32 KiB reads and
// writes.
func (w *statusWriter) ReadFrom(src io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(struct{ io.Writer }{w.ResponseWriter}, src)
	}
	w.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach Flush and deadlines.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush passes flushes through, for long-polls.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

type countingBody struct {
	rc interface {
		Read([]byte) (int, error)
		Close() error
	}
	n int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.rc.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingBody) Close() error { return c.rc.Close() }

// observe wraps every request: a request ID, one log line, and metrics.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-ID")
		if id == "" || !s.trustedPeer(r) || len(id) > 128 {
			id = randomToken()[:16]
		}
		r = withValue(r, requestIDKey, id)
		w.Header().Set("X-Request-ID", id)
		sw := &statusWriter{ResponseWriter: w}
		body := &countingBody{rc: r.Body}
		r.Body = body
		route := "other"
		var match mux.RouteMatch
		if s.router.Match(r, &match) && match.Route != nil {
			if tpl, err := match.Route.GetPathTemplate(); err == nil {
				route = tpl
			}
		}
		next.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		d := time.Since(start)
		s.metrics.requests.WithLabelValues(route, r.Method, strconv.Itoa(sw.status)).Inc()
		s.metrics.duration.WithLabelValues(route, r.Method).Observe(d.Seconds())
		s.metrics.bytesIn.Add(float64(body.n))
		s.metrics.bytesOut.Add(float64(sw.bytes))
		user := ""
		if u := UserFrom(r); u != nil {
			user = u.Username
		}
		s.Logger.Info("request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "bytes_in", body.n,
			"bytes_out", sw.bytes, "duration_ms", d.Milliseconds(), "request_id", id, "remote", s.clientIP(r), "user", user)
	})
}

func requestID(r *http.Request) string {
	id, _ := r.Context().Value(requestIDKey).(string)
	return id
}

// trustedPeer reports whether the direct peer is a configured proxy.
func (s *Server) trustedPeer(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, p := range s.Opts.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// clientIP returns the client's address: the peer, or, behind a trusted
// proxy, the last untrusted address in X-Forwarded-For.
func (s *Server) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if !s.trustedPeer(r) {
		return host
	}
	hops := strings.Split(r.Header.Get("X-Forwarded-For"), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		h := strings.TrimSpace(hops[i])
		ip, err := netip.ParseAddr(h)
		if err != nil {
			break
		}
		trusted := false
		for _, p := range s.Opts.TrustedProxies {
			if p.Contains(ip.Unmap()) {
				trusted = true
			}
		}
		if !trusted {
			return h
		}
		host = h
	}
	return host
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// handleReadyz reports whether the database and the blob store answer.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	checks := map[string]string{"database": "ok", "storage": "ok"}
	ready := true
	if err := s.DB.Ping(ctx); err != nil {
		checks["database"], ready = err.Error(), false
	}
	if c, ok := s.Blobs.(storage.Checker); ok {
		if err := c.Check(ctx); err != nil {
			checks["storage"], ready = err.Error(), false
		}
	}
	status := http.StatusOK
	if !ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, map[string]any{"ready": ready, "checks": checks})
}

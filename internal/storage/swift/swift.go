// Package swift provides a storage.Store that keeps blobs in OpenStack
// Swift.
//
// Blobs are spread over many containers (shards) named
// <ContainerPrefix>-<hex shard>, because a Swift container is a replicated
// SQLite database that every object PUT updates: one huge, hot container
// becomes the bottleneck. Blobs above LargeObjectThreshold are stored as
// Static Large Objects: their segments go to <ContainerPrefix>-segments-<hex
// shard> and the manifest is written last, so a key never shows a partial
// blob. Resumable uploads (storage.Parts) upload their parts straight as
// SLO segments, so completing one writes only a manifest.
//
// # Memory and throughput
//
// Put never buffers a blob, whatever its size: its source (an HTTP
// request body, in Velox) is one sequential stream, and it is sent to
// Swift as it arrives. A blob up to LargeObjectThreshold is one streamed
// PUT. A larger one is streamed segment by segment, pipelined: segment
// i+1 starts as soon as the last byte of segment i has been handed over,
// while segment i waits for Swift to store its replicas and answer, with
// up to Concurrency segment PUTs in flight. So a Put costs a few small
// buffers however large the blob, SegmentSize and Concurrency are, and
// however many uploads run at once.
//
// The price is retries: a request that fails after its first byte was
// read cannot be sent again, because those bytes are gone. The Put then
// fails cleanly (the segments it stored are deleted) and the client sends
// the file again; clients that need to survive failures part-way use
// resumable uploads (storage.Parts), whose parts are retried one by one.
// The alternative, holding Concurrency segments in memory so that each
// can be re-sent, costs Concurrency x SegmentSize (256 MiB by default)
// per upload in flight, and only helps when one Swift PUT stream is
// slower than the client, which it is not on a healthy cluster: the
// proxy already survives a failing object server as long as a quorum of
// replicas is written.
//
// LargeObjectThreshold defaults to 5 GiB, Swift's own limit for one
// object: below it, segmenting a streamed blob brings nothing and costs
// on both sides. Each segment is one more request (with its container
// update), the manifest PUT makes the proxy check every segment, and
// reading a Static Large Object makes the proxy fetch the manifest and
// check the MD5 of every segment it serves, which slows a download
// through a single proxy by about a third. Blobs of unknown size still
// become Static Large Objects once they pass 1 MiB, since a single PUT
// could fail at 5 GiB with no way back. Lower the threshold to spread
// very large blobs over more devices.
//
// Reads are ranged GETs whose bodies are read straight from the HTTP
// transport, with an idle timeout that costs one timer reset per Read
// (see rawBodyTransport).
//
// Example configuration (tempauth):
//
//	s, err := swift.New(ctx, swift.Config{
//		AuthURL: "http://swift.example.internal:8080/auth/v1.0",
//		User:    "velox:velox",
//		Key:     os.Getenv("VELOX_SWIFT_KEY"),
//	})
//
// and with Keystone v3:
//
//	swift.Config{
//		AuthURL:     "https://keystone.example.internal:5000/v3",
//		AuthVersion: 3,
//		User:        "velox", Key: "...", Domain: "Default",
//		Project:     "velox", ProjectDomain: "Default",
//		Region:      "RegionOne",
//	}
package swift

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	ncw "github.com/ncw/swift/v2"

	"github.com/veloxhq/velox/internal/storage"
)

var (
	_ storage.Store   = (*Store)(nil)
	_ storage.Lister  = (*Store)(nil)
	_ storage.Checker = (*Store)(nil)
	_ storage.Parts   = (*Store)(nil)
)

// Config says how to reach Swift and how to lay blobs out in it.
type Config struct {
	AuthURL string
	User    string
	Key     string
	// AuthVersion is 1 (tempauth, swauth) or 3 (Keystone v3); 0 guesses
	// from AuthURL.
	AuthVersion int
	// Domain is the user's Keystone domain (v3).
	Domain string
	// Project is the Keystone project, called tenant in older releases.
	Project string
	// ProjectDomain is the project's domain when it differs from Domain.
	ProjectDomain string
	// Region picks the endpoint from the Keystone catalog; empty takes the
	// first.
	Region string
	// StorageURL, if set, replaces the storage URL that auth returns, for
	// example to reach the proxies over an internal network.
	StorageURL string

	// ContainerPrefix starts every container name; default "velox".
	ContainerPrefix string
	// Shards is the number of blob containers; default 256. Changing it
	// (or the prefix) later hides existing blobs, so pick it once.
	Shards int
	// SegmentSize is the size of Static Large Object segments; default
	// 64 MiB. Segments are streamed, never held in memory, so it does
	// not affect memory use.
	SegmentSize int64
	// ManifestSegments is the most segments one manifest may list: the
	// cluster's max_manifest_segments, default 1000. A blob with more
	// segments (a file above 1000 x SegmentSize, or a resumable upload of
	// more than 1000 parts) gets a manifest of manifests, each listing at
	// most this many segments.
	ManifestSegments int
	// LargeObjectThreshold is the size above which a blob is stored as a
	// Static Large Object; default 5 GiB, the largest single object Swift
	// accepts by default (see the package comment for why), so it must
	// not be set above that.
	LargeObjectThreshold int64
	// Concurrency bounds the segment PUTs of one Put in flight at once;
	// default 4. One segment streams from the source while earlier ones
	// wait for Swift to store their replicas and answer.
	Concurrency int

	// Timeout aborts a request when Swift sends no response or no body
	// bytes for this long; default 60s.
	Timeout time.Duration
	// Retries is how often a failed idempotent request (connection error,
	// timeout, 5xx) is retried, with exponential backoff; default 3, and a
	// negative value disables retries.
	Retries int
	// CACertFile is a PEM file of CAs to trust instead of the system's.
	CACertFile string
	// InsecureSkipVerify disables TLS certificate checks (tests only).
	InsecureSkipVerify bool
}

const (
	defaultPrefix      = "velox"
	defaultShards      = 256
	defaultSegmentSize = 64 << 20
	// defaultManifestSegments is Swift's default max_manifest_segments.
	defaultManifestSegments = 1000
	defaultConcurrency      = 4
	defaultTimeout          = 60 * time.Second
	defaultRetries          = 3
	// maxObjectSize is Swift's default max_file_size for one object.
	maxObjectSize = 5 << 30
	// backoffBase and backoffMax shape the delay between retries.
	backoffBase = 100 * time.Millisecond
	backoffMax  = 2 * time.Second
)

// Store is a storage.Store on Swift. It is safe for concurrent use.
type Store struct {
	conn        *ncw.Connection
	storageURL  string // override, or "" to use the one from auth
	prefix      string
	shards      int
	shardWidth  int // hex digits in a shard suffix
	segmentSize int64
	maxSegments int // segments per manifest
	threshold   int64
	concurrency int
	retries     int

	containers sync.Map // names of containers known to exist
}

// New returns a Store for cfg. It does not contact Swift, so a service can
// start while Swift is down; Check reports reachability.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.AuthURL == "" || cfg.User == "" {
		return nil, errors.New("swift: AuthURL and User are required")
	}
	if cfg.ContainerPrefix == "" {
		cfg.ContainerPrefix = defaultPrefix
	}
	if !storage.ValidKey(cfg.ContainerPrefix) {
		return nil, fmt.Errorf("swift: container prefix %q: %w", cfg.ContainerPrefix, storage.ErrInvalidKey)
	}
	if cfg.Shards == 0 {
		cfg.Shards = defaultShards
	}
	if cfg.Shards < 1 || cfg.Shards > 1<<16 {
		return nil, fmt.Errorf("swift: shards must be between 1 and 65536, not %d", cfg.Shards)
	}
	if cfg.SegmentSize == 0 {
		cfg.SegmentSize = defaultSegmentSize
	}
	if cfg.LargeObjectThreshold == 0 {
		cfg.LargeObjectThreshold = maxObjectSize
	}
	if cfg.SegmentSize < storage.MinPartSize || cfg.SegmentSize > maxObjectSize {
		return nil, fmt.Errorf("swift: segment size %d outside [%d, %d]", cfg.SegmentSize, storage.MinPartSize, int64(maxObjectSize))
	}
	if cfg.LargeObjectThreshold < 0 || cfg.LargeObjectThreshold > maxObjectSize {
		return nil, fmt.Errorf("swift: large object threshold %d outside [0, %d]", cfg.LargeObjectThreshold, int64(maxObjectSize))
	}
	if cfg.ManifestSegments == 0 {
		cfg.ManifestSegments = defaultManifestSegments
	}
	if cfg.ManifestSegments < 2 {
		return nil, fmt.Errorf("swift: manifest segments must be at least 2, not %d", cfg.ManifestSegments)
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = defaultConcurrency
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultTimeout
	}
	switch {
	case cfg.Retries == 0:
		cfg.Retries = defaultRetries
	case cfg.Retries < 0:
		cfg.Retries = 0
	}
	if cfg.StorageURL != "" {
		if _, err := url.Parse(cfg.StorageURL); err != nil {
			return nil, fmt.Errorf("swift: storage URL: %w", err)
		}
	}
	tr, err := transport(cfg)
	if err != nil {
		return nil, err
	}
	conn := &ncw.Connection{
		AuthUrl:      cfg.AuthURL,
		UserName:     cfg.User,
		ApiKey:       cfg.Key,
		AuthVersion:  cfg.AuthVersion,
		Domain:       cfg.Domain,
		Tenant:       cfg.Project,
		TenantDomain: cfg.ProjectDomain,
		Region:       cfg.Region,
		// ncw retries GET/HEAD once on connection errors and, more
		// importantly, re-authenticates once on 401 (expired token); the
		// Store does its own retries with backoff on top.
		Retries:        1,
		ConnectTimeout: cfg.Timeout,
		Timeout:        cfg.Timeout,
		Transport:      rawBodyTransport{tr},
		UserAgent:      "velox",
	}
	width := len(strconv.FormatInt(int64(cfg.Shards-1), 16))
	s := &Store{
		conn:        conn,
		storageURL:  cfg.StorageURL,
		prefix:      cfg.ContainerPrefix,
		shards:      cfg.Shards,
		shardWidth:  width,
		segmentSize: cfg.SegmentSize,
		maxSegments: cfg.ManifestSegments,
		threshold:   cfg.LargeObjectThreshold,
		concurrency: cfg.Concurrency,
		retries:     cfg.Retries,
	}
	return s, nil
}

func transport(cfg Config) (*http.Transport, error) {
	tlsConf := &tls.Config{InsecureSkipVerify: cfg.InsecureSkipVerify}
	if cfg.CACertFile != "" {
		pem, err := os.ReadFile(cfg.CACertFile)
		if err != nil {
			return nil, fmt.Errorf("swift: CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("swift: no certificates in %s", cfg.CACertFile)
		}
		tlsConf.RootCAs = pool
	}
	return &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tlsConf,
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		// ncw sends "Expect: 100-continue" with uploads. Waiting for the
		// 100 means a 401 (expired token) arrives before any body byte is
		// sent, so even a streamed upload can be replayed after re-auth.
		ExpectContinueTimeout: 5 * time.Second,
	}, nil
}

// rawBodyTransport hands the response body of requests marked with a
// rawBodySlot to the caller as it comes from the transport. ncw wraps
// every response body in an idle-timeout reader that runs each Read in a
// new goroutine, which costs more than the read itself for object data;
// object GETs read the raw body instead, with a cheaper watchdog of their
// own (see object.open). Embedding *http.Transport keeps the
// CancelRequest and CloseIdleConnections methods ncw looks for.
type rawBodyTransport struct{ *http.Transport }

// rawBodySlot receives the body of the last response to a request whose
// context carries it.
type rawBodySlot struct{ body io.ReadCloser }

type rawBodyKey struct{}

func (t rawBodyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.Transport.RoundTrip(req)
	if err == nil {
		if slot, ok := req.Context().Value(rawBodyKey{}).(*rawBodySlot); ok {
			slot.body = resp.Body
		}
	}
	return resp, err
}

// shard returns the shard number of a key. The hash must never change:
// it decides where existing blobs live.
func (s *Store) shard(key string) string {
	h := fnv.New32a()
	io.WriteString(h, key)
	return fmt.Sprintf("%0*x", s.shardWidth, h.Sum32()%uint32(s.shards))
}

// container returns the container that holds key.
func (s *Store) container(key string) string { return s.prefix + "-" + s.shard(key) }

// segmentContainer returns the container that holds the segments of key
// (or of the parts of an upload named key).
func (s *Store) segmentContainer(key string) string {
	return s.prefix + "-segments-" + s.shard(key)
}

// isShardContainer reports whether name is one of the blob containers, as
// opposed to segment containers or anything else in the account.
func (s *Store) isShardContainer(name string) bool {
	p := s.prefix + "-"
	if len(name) != len(p)+s.shardWidth || name[:len(p)] != p {
		return false
	}
	n, err := strconv.ParseUint(name[len(p):], 16, 32)
	return err == nil && n < uint64(s.shards) && name[len(p):] == fmt.Sprintf("%0*x", s.shardWidth, n)
}

// call runs one request against the storage URL. The caller must close
// resp.Body unless opts.NoResponse is set.
func (s *Store) call(ctx context.Context, opts ncw.RequestOpts) (*http.Response, ncw.Headers, error) {
	target := s.storageURL
	if target == "" {
		u, err := s.conn.GetStorageUrl(ctx)
		if err != nil {
			return nil, nil, err
		}
		target = u
	}
	// Called by ncw with its auth lock held, after a re-authentication.
	opts.OnReAuth = func() (string, error) {
		if s.storageURL != "" {
			return s.storageURL, nil
		}
		return s.conn.StorageUrl, nil
	}
	return s.conn.Call(ctx, target, opts)
}

// ensureContainer creates container unless it is known to exist.
// Creating an existing container is harmless in Swift, so concurrent
// callers may both do it.
func (s *Store) ensureContainer(ctx context.Context, container string) error {
	if _, ok := s.containers.Load(container); ok {
		return nil
	}
	err := s.retry(ctx, func() error {
		_, _, err := s.call(ctx, ncw.RequestOpts{
			Container:  container,
			Operation:  "PUT",
			NoResponse: true,
			Headers:    ncw.Headers{"Content-Length": "0"},
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("create container %s: %w", container, err)
	}
	s.containers.Store(container, true)
	return nil
}

// retry runs fn until it succeeds, fails with an error not worth
// retrying, or the retries are used up, sleeping with exponential backoff
// and jitter in between. fn must be idempotent.
func (s *Store) retry(ctx context.Context, fn func() error) error {
	reauths := 0
	for attempt := 0; ; attempt++ {
		err := fn()
		if isStatus(err, http.StatusUnauthorized) && reauths < 2 && ctx.Err() == nil {
			// ncw re-authenticates once on 401, but an auth service may
			// hand out the same token again while it has moments left,
			// and it can expire again before the request arrives. Try
			// again, the second time after a pause, by which the old
			// token is surely gone and a fresh one is issued. Wrong
			// credentials fail the same way three times.
			reauths++
			if reauths > 1 && !sleepCtx(ctx, backoffBase) {
				return err
			}
			attempt--
			continue
		}
		if err == nil || !retryable(err) || attempt >= s.retries || ctx.Err() != nil {
			return err
		}
		d := backoffBase << attempt
		if d > backoffMax {
			d = backoffMax
		}
		d = d/2 + rand.N(d/2+1)
		if !sleepCtx(ctx, d) {
			return err
		}
	}
}

// sleepCtx waits for d, or less if ctx ends first; it reports whether
// the whole wait passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// retryable reports whether err may go away by itself: connection
// failures, timeouts, and server-side errors.
func retryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var cv *tls.CertificateVerificationError
	if errors.As(err, &cv) {
		return false // a configuration problem, not a passing one
	}
	var se *ncw.Error
	if errors.As(err, &se) {
		switch {
		case se.StatusCode >= 500, se.StatusCode == 408, se.StatusCode == 429, se.StatusCode == 498:
			return true
		}
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, errShortBody)
}

// errShortBody means a response body ended before its declared length.
var errShortBody = errors.New("swift: response body ended early")

// translate turns an error from Swift into the storage vocabulary:
// 404 becomes ErrNotFound, failures to reach Swift wrap ErrUnavailable.
func translate(op, name string, err error) error {
	if err == nil {
		return nil
	}
	var se *ncw.Error
	switch {
	case errors.Is(err, storage.ErrNotFound), errors.Is(err, storage.ErrSizeMismatch),
		errors.Is(err, storage.ErrInvalidKey), errors.Is(err, storage.ErrPartTooSmall),
		errors.Is(err, storage.ErrUnavailable):
		return fmt.Errorf("swift: %s %s: %w", op, name, err)
	case errors.As(err, &se) && se.StatusCode == http.StatusNotFound:
		return fmt.Errorf("swift: %s %s: %w", op, name, storage.ErrNotFound)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("swift: %s %s: %w", op, name, err)
	case retryable(err):
		return fmt.Errorf("swift: %s %s: %w: %w", op, name, storage.ErrUnavailable, err)
	}
	return fmt.Errorf("swift: %s %s: %w", op, name, err)
}

// Check implements storage.Checker: it authenticates and reads the
// account.
func (s *Store) Check(ctx context.Context) error {
	err := s.retry(ctx, func() error {
		_, _, err := s.call(ctx, ncw.RequestOpts{Operation: "HEAD", NoResponse: true})
		return err
	})
	if err != nil {
		err = translate("check", "account", err)
		if !errors.Is(err, storage.ErrUnavailable) {
			err = fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
		}
		return err
	}
	return nil
}

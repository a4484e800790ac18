package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ocsp"
)

// certStore serves certificates by SNI name and reloads them when their
// files change. Reading a few kilobytes per poll is cheaper than being
// fooled by coarse or preserved modification times.
type certStore struct {
	log    *slog.Logger
	mu     sync.Mutex // serialises reloads
	cfg    TLSConfig
	loaded []*loadedCert
	table  atomic.Pointer[certTable]
	stop   chan struct{}
	once   sync.Once
	client *http.Client
}

type certTable struct {
	byName map[string]*loadedCert
	def    *loadedCert
}

type loadedCert struct {
	spec     CertSpec
	certPEM  []byte
	keyPEM   []byte
	names    []string
	cert     atomic.Pointer[tls.Certificate]
	stopOCSP context.CancelFunc
	stapled  atomic.Bool
}

func newCertStore(cfg TLSConfig, log *slog.Logger) (*certStore, error) {
	s := &certStore{log: log, cfg: cfg, stop: make(chan struct{}), client: &http.Client{Timeout: 30 * time.Second}}
	if err := s.reload(); err != nil {
		return nil, err
	}
	go s.poll()
	return s, nil
}

// update switches to a new certificate list, keeping the poll running.
func (s *certStore) update(cfg TLSConfig) error {
	s.mu.Lock()
	old := s.cfg
	s.cfg = cfg
	s.mu.Unlock()
	if err := s.reload(); err != nil {
		s.mu.Lock()
		s.cfg = old
		s.mu.Unlock()
		return err
	}
	return nil
}

func (s *certStore) poll() {
	for {
		s.mu.Lock()
		interval := s.cfg.ReloadInterval
		s.mu.Unlock()
		select {
		case <-s.stop:
			return
		case <-time.After(interval):
		}
		if err := s.reload(); err != nil {
			s.log.Error("certificate reload failed; keeping the previous certificates", "err", err)
		}
	}
}

func (s *certStore) close() {
	s.once.Do(func() {
		close(s.stop)
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, lc := range s.loaded {
			if lc.stopOCSP != nil {
				lc.stopOCSP()
			}
		}
	})
}

// reload reads every configured file and swaps in changed certificates.
// Nothing changes unless every certificate loads.
func (s *certStore) reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := map[string]*loadedCert{}
	for _, lc := range s.loaded {
		prev[lc.spec.Cert+"\x00"+lc.spec.Key+"\x00"+strings.Join(lc.spec.Hosts, ",")] = lc
	}
	var next, fresh []*loadedCert
	changed := len(s.loaded) != len(s.cfg.Certificates)
	for i, spec := range s.cfg.Certificates {
		certPEM, err := os.ReadFile(spec.Cert)
		if err != nil {
			return fmt.Errorf("tls.certificates[%d]: %w", i, err)
		}
		keyPEM, err := os.ReadFile(spec.Key)
		if err != nil {
			return fmt.Errorf("tls.certificates[%d]: %w", i, err)
		}
		old := prev[spec.Cert+"\x00"+spec.Key+"\x00"+strings.Join(spec.Hosts, ",")]
		if old != nil && bytes.Equal(old.certPEM, certPEM) && bytes.Equal(old.keyPEM, keyPEM) {
			next = append(next, old)
			delete(prev, spec.Cert+"\x00"+spec.Key+"\x00"+strings.Join(spec.Hosts, ","))
			continue
		}
		lc, err := loadCert(spec, certPEM, keyPEM)
		if err != nil {
			return fmt.Errorf("tls.certificates[%d]: %w", i, err)
		}
		next = append(next, lc)
		fresh = append(fresh, lc)
		changed = true
	}
	if !changed {
		return nil
	}
	t := &certTable{byName: map[string]*loadedCert{}, def: next[0]}
	for _, lc := range next {
		for _, n := range lc.names {
			if _, dup := t.byName[n]; !dup {
				t.byName[n] = lc
			}
		}
	}
	s.table.Store(t)
	for _, lc := range prev {
		if lc.stopOCSP != nil {
			lc.stopOCSP()
		}
	}
	s.loaded = next
	for _, lc := range fresh {
		leaf := lc.cert.Load().Leaf
		s.log.Info("certificate loaded", "file", lc.spec.Cert, "names", lc.names,
			"not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
		if *s.cfg.OCSPStapling && len(leaf.OCSPServer) > 0 && len(lc.cert.Load().Certificate) > 1 {
			ctx, cancel := context.WithCancel(context.Background())
			lc.stopOCSP = cancel
			go s.staple(ctx, lc)
		}
	}
	return nil
}

func loadCert(spec CertSpec, certPEM, keyPEM []byte) (*loadedCert, error) {
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", spec.Cert, err)
	}
	leaf := c.Leaf
	lc := &loadedCert{spec: spec, certPEM: certPEM, keyPEM: keyPEM}
	if len(spec.Hosts) > 0 {
		for _, h := range spec.Hosts {
			lc.names = append(lc.names, strings.ToLower(h))
		}
	} else {
		for _, n := range leaf.DNSNames {
			lc.names = append(lc.names, strings.ToLower(n))
		}
		for _, ip := range leaf.IPAddresses {
			lc.names = append(lc.names, ip.String())
		}
	}
	lc.cert.Store(&c)
	return lc, nil
}

// get implements tls.Config.GetCertificate: exact name, then a wildcard
// for the parent domain, then the first certificate.
func (s *certStore) get(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	t := s.table.Load()
	name := strings.TrimSuffix(strings.ToLower(hello.ServerName), ".")
	if lc := t.byName[name]; lc != nil {
		return lc.cert.Load(), nil
	}
	if i := strings.IndexByte(name, '.'); i > 0 {
		if lc := t.byName["*"+name[i:]]; lc != nil {
			return lc.cert.Load(), nil
		}
	}
	return t.def.cert.Load(), nil
}

// staple keeps an OCSP response attached to lc's certificate, refreshing it
// halfway through its validity. Failures only delay stapling: clients then
// check revocation themselves.
func (s *certStore) staple(ctx context.Context, lc *loadedCert) {
	for {
		wait := 10 * time.Minute
		raw, resp, err := s.fetchOCSP(ctx, lc.cert.Load())
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("OCSP fetch failed", "file", lc.spec.Cert, "err", err)
		case resp.Status != ocsp.Good:
			s.log.Warn("OCSP status is not good; not stapling", "file", lc.spec.Cert, "status", resp.Status)
			lc.stapled.Store(false)
		default:
			c := *lc.cert.Load()
			c.OCSPStaple = raw
			lc.cert.Store(&c)
			lc.stapled.Store(true)
			if !resp.NextUpdate.IsZero() {
				wait = max(time.Minute, time.Until(resp.NextUpdate)/2)
			} else {
				wait = time.Hour
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

func (s *certStore) fetchOCSP(ctx context.Context, c *tls.Certificate) ([]byte, *ocsp.Response, error) {
	leaf := c.Leaf
	issuer, err := x509.ParseCertificate(c.Certificate[1])
	if err != nil {
		return nil, nil, fmt.Errorf("parse issuer: %w", err)
	}
	body, err := ocsp.CreateRequest(leaf, issuer, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("create OCSP request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, leaf.OCSPServer[0], bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/ocsp-request")
	res, err := s.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("OCSP responder: status %d", res.StatusCode)
	}
	raw, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return nil, nil, err
	}
	resp, err := ocsp.ParseResponseForCert(raw, leaf, issuer)
	if err != nil {
		return nil, nil, fmt.Errorf("parse OCSP response: %w", err)
	}
	if resp == nil {
		return nil, nil, errors.New("empty OCSP response")
	}
	return raw, resp, nil
}

package swift

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	ncw "github.com/ncw/swift/v2"

	"github.com/veloxhq/velox/internal/storage"
)

const (
	// smallProbe is how much of a blob of unknown size Put reads before
	// deciding between a plain PUT and a Static Large Object, so that
	// small uploads of unknown size do not take a whole segment buffer.
	smallProbe = 1 << 20
	// cleanupTimeout bounds deleting the segments of a failed upload,
	// which runs even when the upload's context was cancelled.
	cleanupTimeout = time.Minute
)

// Put implements storage.Store. Blobs up to LargeObjectThreshold go up in
// one PUT, streamed when their size is known; larger ones become Static
// Large Objects whose manifest is written after every segment is stored.
// Blobs of unknown size are read into memory up to one segment before the
// choice is made, so between SegmentSize and a larger threshold they
// become Static Large Objects too.
//
// Overwriting a key that holds a Static Large Object leaves the old
// segments behind until Sweep; Velox never overwrites keys.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if !storage.ValidKey(key) {
		return fmt.Errorf("swift: put %q: %w", key, storage.ErrInvalidKey)
	}
	r = ctxReader{ctx, r}
	var err error
	switch {
	case size > s.threshold:
		err = s.putLarge(ctx, key, r, size)
	case size >= 0:
		_, err = s.putStream(ctx, s.container(key), key, r, size)
	default:
		err = s.putUnknown(ctx, key, r)
	}
	return translate("put", key, err)
}

// putUnknown stores a blob of unknown size: small ones from memory, the
// rest as a large object.
func (s *Store) putUnknown(ctx context.Context, key string, r io.Reader) error {
	buf := make([]byte, min(s.threshold, smallProbe)+1)
	n, err := io.ReadFull(r, buf)
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return s.putBytes(ctx, s.container(key), key, buf[:n], nil)
	case err != nil:
		return err
	}
	return s.putLarge(ctx, key, io.MultiReader(bytes.NewReader(buf), r), -1)
}

// putBytes stores data, which is in memory and so can be sent again on
// any retryable failure. params, if set, are added to the URL.
func (s *Store) putBytes(ctx context.Context, container, name string, data []byte, params url.Values) error {
	etag := ""
	if params == nil { // a manifest's ETag is computed from its segments' ETags
		etag = md5Hex(data)
	}
	return s.putBytesMD5(ctx, container, name, data, params, etag)
}

// putBytesMD5 is putBytes with the MD5 of data already known.
func (s *Store) putBytesMD5(ctx context.Context, container, name string, data []byte, params url.Values, etag string) error {
	return s.upload(ctx, container, name, int64(len(data)), etag, params, func() io.Reader {
		return bytes.NewReader(data)
	})
}

func md5Hex(data []byte) string {
	sum := md5.Sum(data)
	return hex.EncodeToString(sum[:])
}

// putStream stores r, of the given size or -1, in one PUT, and returns the
// MD5 of what was sent. It can retry only failures that happened before
// any byte of r was read.
func (s *Store) putStream(ctx context.Context, container, name string, r io.Reader, size int64) (string, error) {
	body := &uploadBody{r: r, size: size, md5: md5.New()}
	err := s.upload(ctx, container, name, size, "", nil, func() io.Reader {
		if body.n > 0 {
			return nil
		}
		return body
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(body.md5.Sum(nil)), nil
}

// finalError stops retry from retrying the error it carries.
type finalError struct{ err error }

func (f finalError) Error() string { return f.err.Error() }

// upload PUTs one object with retries. newBody returns the body for an
// attempt, or nil if the body cannot be replayed. etag, if set, makes
// Swift verify the MD5 of what it received; otherwise, unless params are
// set, the ETag Swift returns is compared with the MD5 of what was sent.
func (s *Store) upload(ctx context.Context, container, name string, size int64, etag string, params url.Values, newBody func() io.Reader) error {
	if err := s.ensureContainer(ctx, container); err != nil {
		return err
	}
	headers := ncw.Headers{"Content-Type": "application/octet-stream"}
	if size >= 0 {
		headers["Content-Length"] = strconv.FormatInt(size, 10)
	}
	if etag != "" {
		headers["Etag"] = etag
	}
	recreated := false
	var last error
	err := s.retry(ctx, func() error {
		body := newBody()
		if body == nil {
			return finalError{last}
		}
		_, h, err := s.call(ctx, ncw.RequestOpts{
			Container:  container,
			ObjectName: name,
			Operation:  "PUT",
			Parameters: params,
			Headers:    headers,
			Body:       body,
			NoResponse: true,
		})
		if isStatus(err, http.StatusNotFound) && !recreated {
			// The container was deleted behind our back: create it
			// again and let the retry send the object once more.
			recreated = true
			s.containers.Delete(container)
			if cerr := s.ensureContainer(ctx, container); cerr != nil {
				return cerr
			}
			err = fmt.Errorf("container %s was missing: %w", container, errRecreated)
		}
		if err == nil && etag == "" && params == nil {
			if sb, ok := body.(interface{ md5Sum() string }); ok {
				got := strings.Trim(strings.ToLower(h["Etag"]), `"`)
				if want := sb.md5Sum(); got != want {
					// The corrupt object is visible already: take it away.
					s.deleteObjects(ctx, container, []string{name})
					err = finalError{fmt.Errorf("object %s/%s: Swift stored MD5 %s, sent %s", container, name, got, want)}
				}
			}
		}
		last = err
		return err
	})
	var f finalError
	if errors.As(err, &f) {
		err = f.err
	}
	if isStatus(err, http.StatusUnprocessableEntity) {
		return fmt.Errorf("object %s/%s: Swift received different bytes than were sent: %w", container, name, err)
	}
	return err
}

// errRecreated makes retry send an object again after its container was
// re-created; it is retryable by construction.
var errRecreated = &ncw.Error{StatusCode: http.StatusServiceUnavailable, Text: "container re-created"}

func isStatus(err error, code int) bool {
	var se *ncw.Error
	return errors.As(err, &se) && se.StatusCode == code
}

// segment is one entry of an SLO manifest.
type segment struct {
	Path string `json:"path"`
	Etag string `json:"etag,omitempty"`
	Size int64  `json:"size_bytes"`
}

// putLarge stores r (size bytes, or -1 if unknown) as a Static Large
// Object, streaming each segment straight from r: nothing is buffered, so
// memory does not depend on SegmentSize, Concurrency or the number of
// uploads. Segments go up one after the other, pipelined: as soon as the
// last byte of segment i has been handed to Swift, segment i+1 starts,
// while segment i still waits for Swift to store its replicas and answer.
// Up to Concurrency segment PUTs are in flight. A segment that fails after
// its first byte was read cannot be sent again, so the Put fails; on any
// failure the segments already started are deleted, and the manifest is
// written only after every segment is stored.
func (s *Store) putLarge(ctx context.Context, key string, r io.Reader, size int64) error {
	segContainer := s.segmentContainer(key)
	if err := s.ensureContainer(ctx, segContainer); err != nil {
		return err
	}
	// A fresh directory per upload, so that writing a key again never
	// touches the segments of the version being replaced.
	base := key + "/" + randomHex(8) + "/"

	uctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		segs     []segment
		launched []string // segment names, stored or maybe stored
		firstErr error
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
			cancel()
		}
		mu.Unlock()
	}
	failed := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return firstErr != nil
	}
	slots := make(chan struct{}, s.concurrency)
	// Reading stops as soon as a segment upload fails.
	pr := &peekReader{r: ctxReader{uctx, r}}
	var total int64
	for i := 0; !failed(); i++ {
		if i >= s.maxSegments*s.maxSegments {
			fail(fmt.Errorf("blob larger than %d segments of %d bytes", s.maxSegments*s.maxSegments, s.segmentSize))
			break
		}
		select {
		case slots <- struct{}{}:
		case <-uctx.Done():
			fail(uctx.Err())
			continue
		}
		// Segment i reads r alone: segment i-1 has handed over its last
		// byte, and its body refuses any further Read.
		want := s.segmentSize
		last := false
		if size >= 0 && size-total <= want {
			want, last = size-total, true
		}
		body := &segmentBody{sent: make(chan struct{})}
		if last {
			// The last segment also checks that r ends where it should.
			body.ub = &uploadBody{r: pr, size: want, md5: md5.New()}
		} else {
			body.ub = &uploadBody{r: io.LimitReader(pr, want), size: -1, md5: md5.New()}
			if size >= 0 {
				body.ub.r, body.ub.size = &exactReader{r: pr, n: want, total: size, before: total}, want
			}
		}
		name := fmt.Sprintf("%s%08d", base, i)
		// A PUT that failed on our side may still have been stored,
		// so cleanup covers every segment started.
		launched = append(launched, name)
		done := make(chan struct{})
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-slots }()
			defer close(done)
			etag, err := s.putSegment(uctx, segContainer, name, body)
			if err != nil {
				if rerr := body.readErr(); rerr != nil {
					err = rerr // the reader's error says more than the request's
				}
				fail(fmt.Errorf("segment %d: %w", i, err))
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for len(segs) <= i {
				segs = append(segs, segment{})
			}
			segs[i] = segment{Path: segContainer + "/" + name, Etag: etag, Size: body.ub.n}
		}(i)
		select {
		case <-body.sent:
		case <-done:
		}
		if !body.complete() {
			// The PUT fails or has failed: let it report why.
			<-done
			if !failed() {
				fail(fmt.Errorf("segment %d: request ended before its body", i))
			}
			break
		}
		if failed() {
			break
		}
		total += body.ub.n
		if last {
			break
		}
		if size < 0 {
			if body.ub.n < s.segmentSize {
				break // r ended within this segment
			}
			more, err := pr.more()
			if err != nil {
				fail(err)
				break
			}
			if !more {
				break
			}
		}
	}
	wg.Wait()
	if firstErr != nil {
		s.deleteObjects(ctx, segContainer, launched)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return firstErr
	}
	// The key appears only now, with every byte already stored.
	subs, err := s.putManifest(ctx, key, segContainer, base, segs)
	if err != nil {
		// After a timeout or a 5xx the manifest may have been stored
		// anyway, and deleting its segments would break it: leave them
		// to Sweep, which deletes them only if no manifest lists them.
		if !retryable(err) {
			s.deleteObjects(ctx, segContainer, append(launched, subs...))
		}
		return fmt.Errorf("manifest: %w", err)
	}
	return nil
}

// subManifestName names sub-manifest g of a blob whose segments are named
// base + 8 digits; the "m" keeps the two apart.
func subManifestName(base string, g int) string { return fmt.Sprintf("%sm%08d", base, g) }

// putManifest writes the Static Large Object manifest of key over segs.
// Past s.maxSegments segments, it first writes sub-manifests of at most
// s.maxSegments segments each, named base+"m<n>" in container, and key
// lists those: Swift reads, ranges and deletes (multipart-manifest=delete
// recurses into sub-manifests) such a manifest of manifests as one object.
// It returns the names of the sub-manifests it may have written, for
// cleanup after a failure.
func (s *Store) putManifest(ctx context.Context, key, container, base string, segs []segment) ([]string, error) {
	top := segs
	var subs []string
	if len(segs) > s.maxSegments {
		groups := (len(segs) + s.maxSegments - 1) / s.maxSegments
		if groups > s.maxSegments {
			return nil, fmt.Errorf("%d segments: more than %d x %d", len(segs), s.maxSegments, s.maxSegments)
		}
		top = make([]segment, groups)
		for g := range groups {
			subs = append(subs, subManifestName(base, g))
		}
		err := s.forEach(ctx, groups, func(g int) error {
			group := segs[g*s.maxSegments : min(len(segs), (g+1)*s.maxSegments)]
			var size int64
			for _, sg := range group {
				size += sg.Size
			}
			body, err := json.Marshal(group)
			if err != nil {
				return err
			}
			if err := s.putBytes(ctx, container, subs[g], body, url.Values{"multipart-manifest": {"put"}}); err != nil {
				return fmt.Errorf("sub-manifest %d: %w", g, err)
			}
			// No ETag: Swift checked the segments' when it stored
			// the sub-manifest, which is what the entry refers to.
			top[g] = segment{Path: container + "/" + subs[g], Size: size}
			return nil
		})
		if err != nil {
			return subs, err
		}
	}
	manifest, err := json.Marshal(top)
	if err != nil {
		return subs, err
	}
	return subs, s.putBytes(ctx, s.container(key), key, manifest, url.Values{"multipart-manifest": {"put"}})
}

// putSegment streams one segment and returns its MD5, which Swift's ETag
// has been checked against. A failure before the first byte was read is
// retried; later ones are not, as the bytes are gone.
func (s *Store) putSegment(ctx context.Context, container, name string, body *segmentBody) (string, error) {
	defer body.close()
	err := s.upload(ctx, container, name, body.ub.size, "", nil, func() io.Reader {
		if body.started() {
			return nil
		}
		return body
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(body.ub.md5.Sum(nil)), nil
}

// errBodyClosed is what a segment body returns once its request is over:
// a transport still holding it must not consume the next segment's bytes.
var errBodyClosed = errors.New("swift: segment body read after its request ended")

// segmentBody is the body of one streamed segment PUT. It closes sent
// when it has handed over its last byte or failed, which is when the next
// segment may start reading the shared reader.
type segmentBody struct {
	ub   *uploadBody
	sent chan struct{}

	mu     sync.Mutex
	err    error // io.EOF once complete, or the reader's error
	closed bool
}

func (b *segmentBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, errBodyClosed
	}
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.ub.Read(p)
	if err != nil {
		b.err = err
		close(b.sent)
	}
	return n, err
}

// Seek allows a replay (after re-authentication) while nothing was read.
func (b *segmentBody) Seek(offset int64, whence int) (int64, error) {
	if offset == 0 && whence == io.SeekStart && !b.started() {
		return 0, nil
	}
	return 0, errors.New("swift: a streamed segment cannot be rewound")
}

func (b *segmentBody) started() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ub.n > 0 || b.err != nil
}

// md5Sum is the MD5 of what was handed over.
func (b *segmentBody) md5Sum() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return hex.EncodeToString(b.ub.md5.Sum(nil))
}

// readErr returns the error reading the source failed with, if any.
func (b *segmentBody) readErr() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err == io.EOF {
		return nil
	}
	return b.err
}

// complete reports whether every byte was handed over.
func (b *segmentBody) complete() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err == io.EOF
}

// close ends the body for good, and closes sent if it was still open.
func (b *segmentBody) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed && b.err == nil {
		close(b.sent)
	}
	b.closed = true
}

// exactReader reads the n bytes of a segment that is not the last of a
// blob of known size, and turns an early end of the source into a size
// mismatch.
type exactReader struct {
	r             io.Reader
	n             int64 // bytes left in the segment
	before, total int64 // blob bytes before this segment, and in all
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.n {
		p = p[:e.n]
	}
	n, err := e.r.Read(p)
	e.n -= int64(n)
	e.before += int64(n)
	if err == io.EOF && e.n > 0 {
		return n, fmt.Errorf("got %d bytes, want %d: %w", e.before, e.total, storage.ErrSizeMismatch)
	}
	if err == io.EOF {
		err = nil
	}
	return n, err
}

// deleteObjects removes names from container, best effort, even if ctx
// was cancelled: it cleans up after failed uploads.
func (s *Store) deleteObjects(ctx context.Context, container string, names []string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	s.forEach(ctx, len(names), func(i int) error {
		err := s.deleteObject(ctx, container, names[i], false)
		if isStatus(err, http.StatusNotFound) {
			return nil
		}
		return err
	})
}

// forEach runs fn(0..n-1) with up to Concurrency at a time and returns the
// first error.
func (s *Store) forEach(ctx context.Context, n int, fn func(i int) error) error {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	slots := make(chan struct{}, s.concurrency)
	for i := 0; i < n; i++ {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			if err := fn(i); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return firstErr
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// uploadBody is the body of a streamed PUT. It enforces the declared size:
// a reader that ends early or has extra bytes makes Read fail before the
// last declared byte is handed over, so Swift never receives a complete
// body and stores nothing. It hashes what it hands over.
type uploadBody struct {
	r    io.Reader
	size int64 // -1 if unknown
	n    int64
	md5  hash.Hash
}

// md5Sum is the MD5 of what was handed over.
func (b *uploadBody) md5Sum() string { return hex.EncodeToString(b.md5.Sum(nil)) }

func (b *uploadBody) Read(p []byte) (int, error) {
	if b.size < 0 {
		n, err := b.r.Read(p)
		b.n += int64(n)
		b.md5.Write(p[:n])
		return n, err
	}
	rem := b.size - b.n
	if rem == 0 {
		return 0, b.checkEnd()
	}
	if int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := b.r.Read(p)
	if b.n+int64(n) == b.size {
		// Hold back the final bytes until we know nothing follows.
		if err == nil || err == io.EOF {
			err = b.checkEnd()
		}
		if err != io.EOF {
			return 0, err
		}
	}
	b.n += int64(n)
	b.md5.Write(p[:n])
	if err == io.EOF && b.n < b.size {
		return n, fmt.Errorf("got %d bytes, want %d: %w", b.n, b.size, storage.ErrSizeMismatch)
	}
	return n, err
}

// checkEnd returns io.EOF if the reader has no more bytes.
func (b *uploadBody) checkEnd() error {
	var one [1]byte
	for {
		n, err := b.r.Read(one[:])
		if n > 0 {
			return fmt.Errorf("got more than %d bytes: %w", b.size, storage.ErrSizeMismatch)
		}
		if err != nil {
			return err
		}
	}
}

// Seek lets ncw rewind the body to send it again after re-authenticating,
// which is possible only while nothing has been read.
func (b *uploadBody) Seek(offset int64, whence int) (int64, error) {
	if offset == 0 && whence == io.SeekStart && b.n == 0 {
		return 0, nil
	}
	return 0, errors.New("swift: a streamed upload cannot be rewound")
}

// peekReader can tell whether its reader has more bytes without losing
// one.
type peekReader struct {
	r      io.Reader
	peeked []byte
	err    error
}

func (p *peekReader) Read(b []byte) (int, error) {
	if len(p.peeked) > 0 {
		n := copy(b, p.peeked)
		p.peeked = p.peeked[n:]
		return n, nil
	}
	if p.err != nil {
		return 0, p.err
	}
	return p.r.Read(b)
}

// more reports whether a Read would return bytes.
func (p *peekReader) more() (bool, error) {
	if len(p.peeked) > 0 {
		return true, nil
	}
	var one [1]byte
	for {
		n, err := p.r.Read(one[:])
		if n > 0 {
			p.peeked = append(p.peeked[:0], one[0])
			if err != nil {
				p.err = err
			}
			return true, nil
		}
		if err == io.EOF {
			p.err = err
			return false, nil
		}
		if err != nil {
			return false, err
		}
	}
}

// ctxReader stops reading once ctx is done, so an abandoned upload does not
// keep consuming its source.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

package swift

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	ncw "github.com/ncw/swift/v2"

	"github.com/veloxhq/velox/internal/storage"
)

// head returns the headers of an object.
func (s *Store) head(ctx context.Context, container, name string) (ncw.Headers, error) {
	var h ncw.Headers
	err := s.retry(ctx, func() error {
		var err error
		_, h, err = s.call(ctx, ncw.RequestOpts{Container: container, ObjectName: name, Operation: "HEAD", NoResponse: true})
		return err
	})
	return h, err
}

func objectSize(h ncw.Headers) (int64, error) {
	n, err := strconv.ParseInt(h["Content-Length"], 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad Content-Length %q", h["Content-Length"])
	}
	return n, nil
}

// Stat implements storage.Store.
func (s *Store) Stat(ctx context.Context, key string) (storage.Info, error) {
	if !storage.ValidKey(key) {
		return storage.Info{}, fmt.Errorf("swift: stat %q: %w", key, storage.ErrInvalidKey)
	}
	h, err := s.head(ctx, s.container(key), key)
	if err != nil {
		return storage.Info{}, translate("stat", key, err)
	}
	size, err := objectSize(h)
	if err != nil {
		return storage.Info{}, translate("stat", key, err)
	}
	mtime, _ := http.ParseTime(h["Last-Modified"])
	return storage.Info{Key: key, Size: size, ModTime: mtime}, nil
}

// Open implements storage.Store. It costs one HEAD; bytes are fetched by
// ranged GETs when first read, so seeking is free. Reads use ctx.
func (s *Store) Open(ctx context.Context, key string) (storage.Object, error) {
	if !storage.ValidKey(key) {
		return nil, fmt.Errorf("swift: open %q: %w", key, storage.ErrInvalidKey)
	}
	container := s.container(key)
	h, err := s.head(ctx, container, key)
	if err != nil {
		return nil, translate("open", key, err)
	}
	size, err := objectSize(h)
	if err != nil {
		return nil, translate("open", key, err)
	}
	slo := strings.EqualFold(h["X-Static-Large-Object"], "true")
	return &object{s: s, ctx: ctx, container: container, name: key, size: size, slo: slo}, nil
}

// object reads a blob with GETs starting at the current offset. A broken
// download is resumed where it stopped (Swift itself serves ranges of
// Static Large Objects across segments).
//
// A read of a Static Large Object from its first byte (a whole download)
// fetches the manifest and then GETs the segments themselves, one after
// the other. Why: the Swift proxy computes the MD5 of every segment it
// serves through a manifest, on top of the object server's own, and on a
// busy cluster that costs a sizeable part of the proxy's CPU per byte.
// Every segment GET carries the manifest's ETag in If-Match, so a segment
// replaced behind the manifest fails the read. The GET of the next
// segment starts while the current one has its last prefetchWithin bytes
// to go, so a segment boundary does not wait for Swift's first byte.
//
// The trade-off of reading segments directly: the proxy's check also cut
// a transfer short when a replica had rotted, where an object server only
// quarantines it after serving it; for encrypted blobs (the default)
// every package is authenticated anyway, for plain ones rotten bytes now
// reach the client once, as with any plain object.
type object struct {
	s         *Store
	ctx       context.Context
	container string
	name      string
	size      int64
	slo       bool // a Static Large Object whose manifest was not read yet

	// The segments, once fetched for a read from the start; nil while
	// reads go through the manifest object.
	segs   []sloSegment
	segEnd int64 // end of the segment (or object) body reads from

	off    int64
	body   *stream   // open response from off, or nil
	next   *prefetch // GET of the segment after the current one, or nil
	closed bool
}

// prefetchWithin is how close to the end of a segment the GET of the next
// one starts: far enough ahead to hide a first byte's wait at a few
// hundred MB/s, close enough that the early response does not sit unread
// for long (a proxy cuts a connection it cannot write to; the read then
// resumes with a fresh GET). A variable for the benchmark; -1 turns
// prefetching off.
var prefetchWithin int64 = 8 << 20

// stream is an open GET response.
type stream struct {
	body   io.ReadCloser // as the transport hands it over
	closer io.Closer     // closes the response as ncw handed it over
	dog    *watchdog     // idle timeout of body
}

func (st *stream) close() error {
	st.dog.stop()
	err := st.body.Close()
	st.closer.Close()
	return err
}

// prefetch is a GET started ahead of the reads that need it.
type prefetch struct {
	start  int64 // offset in the object of the segment it fetches
	cancel context.CancelFunc
	done   chan struct{} // closed when st or err is set
	st     *stream
	err    error
}

// discard abandons a prefetch without waiting for it.
func (p *prefetch) discard() {
	p.cancel()
	go func() {
		<-p.done
		if p.st != nil {
			p.st.close()
		}
	}()
}

// closeBody ends the current GET, if any.
func (o *object) closeBody() error {
	if o.body == nil {
		return nil
	}
	err := o.body.close()
	o.body = nil
	return err
}

// dropNext abandons the prefetched GET, if any.
func (o *object) dropNext() {
	if o.next != nil {
		o.next.discard()
		o.next = nil
	}
}

// maybePrefetch starts the GET of the next segment when the current one
// is close to its end.
func (o *object) maybePrefetch() {
	if o.segs == nil || o.next != nil || o.segEnd >= o.size || o.segEnd-o.off > prefetchWithin {
		return
	}
	i := sort.Search(len(o.segs), func(i int) bool { return o.segs[i].start >= o.segEnd })
	if i == len(o.segs) {
		return
	}
	seg := o.segs[i]
	ctx, cancel := context.WithCancel(o.ctx)
	p := &prefetch{start: seg.start, cancel: cancel, done: make(chan struct{})}
	o.next = p
	go func() {
		defer close(p.done)
		st, err := o.s.get(ctx, seg.container, seg.name, 0, seg.size, seg.etag)
		if err != nil {
			cancel()
			p.err = err
			return
		}
		st.dog.stop() // idle time counts from the first Read
		inner := st.closer
		st.closer = closerFunc(func() error {
			defer cancel()
			return inner.Close()
		})
		p.st = st
	}()
}

func (o *object) Size() int64 { return o.size }

func (o *object) Read(p []byte) (int, error) {
	if o.closed {
		return 0, errors.New("swift: read of closed object")
	}
	if o.off >= o.size {
		return 0, io.EOF
	}
	if rem := o.size - o.off; int64(len(p)) > rem {
		p = p[:rem]
	}

	for failures := 0; ; failures++ {
		if o.body != nil && o.off >= o.segEnd {
			o.closeBody() // a segment read to its end: on to the next
		}
		if o.body == nil {
			if err := o.open(); err != nil {
				return 0, translate("read", o.name, err)
			}
		}
		q := p
		if int64(len(q)) > o.segEnd-o.off {
			q = q[:o.segEnd-o.off] // never past the segment's own length
		}
		// Only time spent waiting for Swift counts, not the caller's
		// pauses between Reads.
		o.body.dog.kick()
		n, err := o.body.body.Read(q)
		o.body.dog.stop()
		o.off += int64(n)
		if err == nil {
			o.maybePrefetch()
			return n, nil
		}
		if o.body.dog.fired() {
			err = ncw.TimeoutError
		}
		o.closeBody()
		if err == io.EOF {
			if o.off >= o.size {
				return n, io.EOF
			}
			if o.off == o.segEnd {
				// The end of a segment: the next Read GETs the next one.
				if n > 0 {
					return n, nil
				}
				failures = -1
				continue
			}
			err = errShortBody
		}
		if n > 0 {
			return n, nil // the next Read resumes at o.off
		}
		if !retryable(err) || failures >= o.s.retries || o.ctx.Err() != nil {
			return 0, translate("read", o.name, err)
		}
	}
}

// sloSegment is one segment of a Static Large Object.
type sloSegment struct {
	container, name string
	start, size     int64
	etag            string
}

// open starts a GET at o.off: of the segment holding it when the
// segments are known, of the object otherwise.
func (o *object) open() error {
	if o.slo && o.off == 0 {
		o.slo = false
		o.segs = o.s.segments(o.ctx, o.container, o.name, o.size)
	}
	var err error
	if o.segs == nil {
		o.segEnd = o.size
		o.body, err = o.s.get(o.ctx, o.container, o.name, o.off, o.size-o.off, "")
		return err
	}
	i := sort.Search(len(o.segs), func(i int) bool { return o.segs[i].start+o.segs[i].size > o.off })
	seg := o.segs[i]
	o.segEnd = seg.start + seg.size
	if p := o.next; p != nil && p.start == o.off {
		o.next = nil
		select {
		case <-p.done:
		case <-o.ctx.Done():
			p.discard()
			return o.ctx.Err()
		}
		o.body = p.st
		return p.err // after the same retries as any GET
	}
	if o.next != nil && o.next.start != o.segEnd {
		o.dropNext()
	}
	o.body, err = o.s.get(o.ctx, seg.container, seg.name, o.off-seg.start, seg.size-(o.off-seg.start), seg.etag)
	return err
}

// segments returns the segments of the Static Large Object container/name
// of size bytes, following sub-manifests, or nil when reads should go
// through the manifest: segment ranges, sizes that do not add up, or a
// manifest that could not be read (reading it is only an optimisation).
func (s *Store) segments(ctx context.Context, container, name string, size int64) []sloSegment {
	var segs []sloSegment
	var start int64
	var add func(container, name string, depth int) bool
	add = func(container, name string, depth int) bool {
		entries, isSLO, err := s.getManifest(ctx, container, name)
		if err != nil || !isSLO || depth >= maxManifestDepth {
			return false
		}
		for _, e := range entries {
			c, n, ok := strings.Cut(strings.TrimPrefix(e.Name, "/"), "/")
			switch {
			case !ok || e.Range != "" || e.Bytes <= 0:
				return false
			case e.SubSLO:
				if !add(c, n, depth+1) {
					return false
				}
			default:
				segs = append(segs, sloSegment{container: c, name: n, start: start, size: e.Bytes, etag: e.Hash})
				start += e.Bytes
			}
		}
		return true
	}
	if !add(container, name, 0) || start != size || len(segs) == 0 {
		return nil
	}
	return segs
}

var errSegmentChanged = errors.New("segment does not match its manifest")

// get starts a GET of container/name from byte from, expecting length
// bytes to its end. With etag set (a segment), the object must still be
// the one the manifest names: a GET with If-Match, and exactly length
// bytes. ncw's Call authenticates, re-authenticates on 401 and checks the
// status; the body is read from the transport directly (see
// rawBodyTransport), under a watchdog that cancels the request when Swift
// sends nothing for the connection's Timeout.
func (s *Store) get(octx context.Context, container, name string, from, length int64, etag string) (*stream, error) {
	h := ncw.Headers{}
	if from > 0 {
		h["Range"] = fmt.Sprintf("bytes=%d-", from)
	}
	if etag != "" {
		h["If-Match"] = `"` + etag + `"`
	}
	var st *stream
	err := s.retry(octx, func() error {
		ctx, cancel := context.WithCancel(octx)
		slot := &rawBodySlot{}
		ctx = context.WithValue(ctx, rawBodyKey{}, slot)
		resp, _, err := s.call(ctx, ncw.RequestOpts{Container: container, ObjectName: name, Operation: "GET", Headers: h})
		if err != nil {
			cancel()
			if etag != "" && (isStatus(err, http.StatusPreconditionFailed) || isStatus(err, http.StatusNotFound)) {
				// The manifest names a segment that is gone or changed.
				return fmt.Errorf("%s/%s: %w: %w", container, name, storage.ErrCorrupt, errSegmentChanged)
			}
			return err
		}
		// Some servers (the swifttest fake) answer a range with 200 and
		// just the requested bytes; a 200 with the whole object is wrong.
		ranged := resp.StatusCode == http.StatusPartialContent || resp.ContentLength == length
		if from > 0 && !ranged || etag != "" && resp.ContentLength != length {
			resp.Body.Close()
			cancel()
			if etag != "" {
				return fmt.Errorf("%s/%s: %w: %w", container, name, storage.ErrCorrupt, errSegmentChanged)
			}
			return fmt.Errorf("range request at %d answered with %s", from, resp.Status)
		}
		body := slot.body
		if body == nil { // a transport that is not ours: ncw's reader then
			body = resp.Body
		}
		st = &stream{body: body, closer: closerFunc(func() error {
			cancel()
			return resp.Body.Close()
		}), dog: newWatchdog(s.conn.Timeout, cancel)}
		return nil
	})
	return st, err
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// watchdog calls a function when it has not been kicked for a while. It
// is an idle timeout for a response body that costs one timer reset per
// Read, where ncw's runs every Read in a goroutine of its own.
type watchdog struct {
	d    time.Duration
	t    *time.Timer
	fire atomic.Bool
}

func newWatchdog(d time.Duration, f func()) *watchdog {
	w := &watchdog{d: d}
	w.t = time.AfterFunc(d, func() {
		w.fire.Store(true)
		f()
	})
	return w
}

// kick starts the countdown again.
func (w *watchdog) kick() { w.t.Reset(w.d) }

// fired reports whether the timeout struck.
func (w *watchdog) fired() bool { return w.fire.Load() }

func (w *watchdog) stop() { w.t.Stop() }

// Seek implements io.Seeker without any request: the next Read starts a
// new GET at the new offset.
func (o *object) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = o.off + offset
	case io.SeekEnd:
		abs = o.size + offset
	default:
		return 0, errors.New("swift: seek: invalid whence")
	}
	if abs < 0 {
		return 0, errors.New("swift: seek: negative position")
	}
	if abs != o.off {
		o.closeBody()
		o.dropNext()
	}
	o.off = abs
	return abs, nil
}

func (o *object) Close() error {
	o.closed = true
	o.dropNext()
	return o.closeBody()
}

// Delete implements storage.Store. A Static Large Object is deleted with
// its segments.
func (s *Store) Delete(ctx context.Context, key string) error {
	if !storage.ValidKey(key) {
		return fmt.Errorf("swift: delete %q: %w", key, storage.ErrInvalidKey)
	}
	container := s.container(key)
	h, err := s.head(ctx, container, key)
	if err != nil {
		return translate("delete", key, err)
	}
	slo := strings.EqualFold(h["X-Static-Large-Object"], "true")
	return translate("delete", key, s.deleteObject(ctx, container, key, slo))
}

// deleteObject deletes one object, with its segments if slo is set.
func (s *Store) deleteObject(ctx context.Context, container, name string, slo bool) error {
	opts := ncw.RequestOpts{Container: container, ObjectName: name, Operation: "DELETE", NoResponse: true}
	if slo {
		opts.Parameters = url.Values{"multipart-manifest": {"delete"}}
		opts.Headers = ncw.Headers{"Accept": "application/json"}
		opts.NoResponse = false
	}
	attempt := 0
	return s.retry(ctx, func() error {
		attempt++
		resp, _, err := s.call(ctx, opts)
		if isStatus(err, http.StatusNotFound) && attempt > 1 {
			return nil // an earlier attempt got through before failing
		}
		if err != nil || !slo {
			return err
		}
		return bulkDeleteResult(resp, attempt)
	})
}

// bulkDeleteResult reads the report Swift sends for
// ?multipart-manifest=delete: the status line is always 200, the outcome
// is in the body.
func bulkDeleteResult(resp *http.Response, attempt int) error {
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil // servers without the bulk report (the swifttest fake)
	}
	var r struct {
		Deleted  int        `json:"Number Deleted"`
		NotFound int        `json:"Number Not Found"`
		Status   string     `json:"Response Status"`
		Errors   [][]string `json:"Errors"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("bulk delete report: %w", err)
	}
	code, _, _ := strings.Cut(r.Status, " ")
	status, _ := strconv.Atoi(code)
	switch {
	case len(r.Errors) > 0 || status/100 != 2:
		if status == 0 || status/100 == 2 {
			status = http.StatusInternalServerError
		}
		return &ncw.Error{StatusCode: status, Text: fmt.Sprintf("delete: %s %v", r.Status, r.Errors)}
	case r.Deleted == 0 && r.NotFound > 0 && attempt == 1:
		return &ncw.Error{StatusCode: http.StatusNotFound, Text: "manifest not found"}
	}
	return nil
}

// listEntry is an item of a JSON account or container listing.
type listEntry struct {
	Name         string `json:"name"`
	Bytes        int64  `json:"bytes"`
	LastModified string `json:"last_modified"`
}

const listLimit = 1000

// list calls fn for every entry of the account (container "") or of a
// container, whose names start with prefix, a page at a time.
func (s *Store) list(ctx context.Context, container, prefix string, fn func(listEntry) error) error {
	marker := ""
	for {
		params := url.Values{"format": {"json"}, "limit": {strconv.Itoa(listLimit)}}
		if prefix != "" {
			params.Set("prefix", prefix)
		}
		if marker != "" {
			params.Set("marker", marker)
		}
		var page []listEntry
		err := s.retry(ctx, func() error {
			resp, _, err := s.call(ctx, ncw.RequestOpts{Container: container, Operation: "GET", Parameters: params})
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			page = nil
			if resp.StatusCode == http.StatusNoContent {
				return nil
			}
			return json.NewDecoder(resp.Body).Decode(&page)
		})
		if err != nil {
			return err
		}
		for _, e := range page {
			if err := fn(e); err != nil {
				return err
			}
		}
		if len(page) < listLimit {
			return nil
		}
		marker = page[len(page)-1].Name
	}
}

// List implements storage.Lister. It walks the blob containers only;
// segments are reached through their manifests. Listings in Swift are
// eventually consistent: a blob stored moments ago may be missing.
func (s *Store) List(ctx context.Context, fn func(storage.Info) error) error {
	var containers []string
	err := s.list(ctx, "", s.prefix+"-", func(e listEntry) error {
		if s.isShardContainer(e.Name) {
			containers = append(containers, e.Name)
		}
		return nil
	})
	if err != nil {
		return translate("list", "containers", err)
	}
	for _, c := range containers {
		err := s.list(ctx, c, "", func(e listEntry) error {
			if !storage.ValidKey(e.Name) {
				return nil // not ours
			}
			mtime, _ := time.Parse("2006-01-02T15:04:05.999999999", e.LastModified)
			return fn(storage.Info{Key: e.Name, Size: e.Bytes, ModTime: mtime})
		})
		if isStatus(err, http.StatusNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return translate("list", c, err)
		}
	}
	return nil
}

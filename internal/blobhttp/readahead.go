package blobhttp

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"

	"github.com/veloxhq/velox/internal/storage"
)

// readAheadSize is the size of each of the two buffers a download from a
// remote store reads into. A reader of its own, a buffer ahead of the
// writer, keeps bytes flowing from the store while the previous ones go
// to the client, and large reads take whatever the store's connection
// has buffered in one call. http.ServeContent alone alternates 32 KiB
// reads and writes on one goroutine, so each side waits for the other.
const readAheadSize = 1 << 20

var readAheadPool = sync.Pool{New: func() any { b := make([]byte, readAheadSize); return &b }}

type chunk struct {
	buf *[]byte
	n   int
	err error
}

// readAhead is an io.ReadSeeker over a storage.Object that reads ahead
// in a goroutine of its own, started by the first Read and stopped by a
// Seek elsewhere and by Close. Seeks are lazy: they take effect at the
// next Read, so http.ServeContent's probe (seek to the end for the size,
// back to the start) keeps what was read ahead. It holds at most two
// buffers of readAheadSize; Close must be called before the object is
// closed.
type readAhead struct {
	ctx context.Context
	obj storage.Object

	free chan *[]byte
	full chan chunk
	stop chan struct{}
	done chan struct{}

	cur  chunk  // the chunk being handed out
	rest []byte // its bytes not handed out yet
	err  error  // sticky error from the reader
	pos  int64  // offset of the next byte rest holds (or obj, if stopped)
	want int64  // offset the next Read returns from, set by Seek
}

func newReadAhead(ctx context.Context, obj storage.Object) *readAhead {
	return &readAhead{ctx: ctx, obj: obj}
}

func (ra *readAhead) start() {
	ra.free = make(chan *[]byte, 2)
	ra.full = make(chan chunk, 2)
	ra.stop = make(chan struct{})
	ra.done = make(chan struct{})
	for range 2 {
		ra.free <- readAheadPool.Get().(*[]byte)
	}
	go ra.fill(ra.free, ra.full, ra.stop, ra.done)
}

// fill reads the object into free buffers and queues them on full, until
// an error (io.EOF included) or stop.
func (ra *readAhead) fill(free chan *[]byte, full chan<- chunk, stop, done chan struct{}) {
	defer close(done)
	for {
		var buf *[]byte
		select {
		case buf = <-free:
		case <-stop:
			return
		}
		// Gather at least a quarter of a buffer per hand-off: a remote
		// store's reads return 64 KiB or less at a time, handing each
		// over to the writer costs two goroutine switches, and Serve
		// checks the whole first chunk before it answers.
		const min = readAheadSize / 4
		// Not io.ReadAtLeast: it would turn a short final chunk into
		// io.ErrUnexpectedEOF, indistinguishable from the store's own.
		var n int
		var err error
		for n < min && err == nil {
			var m int
			m, err = ra.obj.Read((*buf)[n:])
			n += m
		}
		select {
		case full <- chunk{buf: buf, n: n, err: err}:
		case <-stop:
			free <- buf
			return
		}
		if err != nil {
			return
		}
	}
}

// prime reads the first chunk from the current position, if not read yet,
// and returns the store's error if that failed: a caller can then answer
// with an error before any byte of the response is written.
func (ra *readAhead) prime() error {
	if err := ra.applySeek(); err != nil {
		return err
	}
	if len(ra.rest) == 0 && ra.err == nil {
		if err := ra.fetch(); err != nil {
			return err
		}
	}
	if ra.err != nil && ra.err != io.EOF {
		return ra.err
	}
	return nil
}

func (ra *readAhead) Read(p []byte) (int, error) {
	b, err := ra.next(int64(len(p)))
	return copy(p, b), err
}

// next returns up to max of the next bytes, valid until the next call,
// without copying them.
func (ra *readAhead) next(max int64) ([]byte, error) {
	if err := ra.ctx.Err(); err != nil {
		return nil, err
	}
	if err := ra.applySeek(); err != nil {
		return nil, err
	}
	for len(ra.rest) == 0 {
		if ra.err != nil {
			return nil, ra.err
		}
		if err := ra.fetch(); err != nil {
			return nil, err
		}
	}
	b := ra.rest
	if int64(len(b)) > max {
		b = b[:max]
	}
	ra.rest = ra.rest[len(b):]
	ra.pos += int64(len(b))
	ra.want = ra.pos
	return b, nil
}

// fetch replaces the drained current chunk with the next one.
func (ra *readAhead) fetch() error {
	if err := ra.ctx.Err(); err != nil {
		return err
	}
	if ra.done == nil {
		ra.start()
	}
	if ra.cur.buf != nil {
		ra.free <- ra.cur.buf
		ra.cur = chunk{}
	}
	select {
	case c := <-ra.full:
		ra.cur, ra.rest, ra.err = c, (*c.buf)[:c.n], c.err
		return nil
	case <-ra.ctx.Done():
		return ra.ctx.Err()
	}
}

// applySeek moves to want, dropping what was read ahead, unless want is
// where the buffered bytes continue.
func (ra *readAhead) applySeek() error {
	if ra.want == ra.pos {
		return nil
	}
	ra.halt()
	pos, err := ra.obj.Seek(ra.want, io.SeekStart)
	if err != nil {
		ra.want = ra.pos
		return err
	}
	ra.pos, ra.want = pos, pos
	return nil
}

// halt stops the reading goroutine, if any, and returns its buffers to
// the pool.
func (ra *readAhead) halt() {
	if ra.done == nil {
		return
	}
	close(ra.stop)
	<-ra.done
	if ra.cur.buf != nil {
		readAheadPool.Put(ra.cur.buf)
	}
	close(ra.full)
	for c := range ra.full {
		readAheadPool.Put(c.buf)
	}
	close(ra.free)
	for b := range ra.free {
		readAheadPool.Put(b)
	}
	ra.free, ra.full, ra.stop, ra.done = nil, nil, nil, nil
	ra.cur, ra.rest, ra.err = chunk{}, nil, nil
}

// Seek implements io.Seeker. It only records the position; the next Read
// moves there.
func (ra *readAhead) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += ra.want
	case io.SeekEnd:
		off += ra.obj.Size()
	default:
		return 0, errors.New("seek: invalid whence")
	}
	if off < 0 {
		return 0, errors.New("seek: negative position")
	}
	ra.want = off
	return off, nil
}

// Close stops reading ahead; it does not close the object.
func (ra *readAhead) Close() error {
	ra.halt()
	return nil
}

// readAheadWriter hands http.ServeContent's copy a ReadFrom that writes
// the read-ahead buffers to the client as they are, a megabyte at a time,
// instead of through a 32 KiB copy buffer.
type readAheadWriter struct {
	http.ResponseWriter
	ra *readAhead
}

func (w readAheadWriter) ReadFrom(src io.Reader) (int64, error) {
	lr, ok := src.(*io.LimitedReader)
	if !ok || lr.R != w.ra {
		return io.Copy(struct{ io.Writer }{w.ResponseWriter}, src)
	}
	var total int64
	for lr.N > 0 {
		b, err := w.ra.next(lr.N)
		if len(b) > 0 {
			n, werr := w.ResponseWriter.Write(b)
			total += int64(n)
			lr.N -= int64(n)
			if werr != nil {
				return total, werr
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// Package readahead reads an io.Reader ahead of its consumer, in a
// goroutine of its own and into a few pooled buffers, so that producing
// bytes (a disk or network read, a decryption) and consuming them (a
// write to a socket or a file) run on two cores instead of taking turns.
//
// The chunks are buffered rather than handed over through an io.Pipe:
// with a pipe each side waits for the other at every chunk.
package readahead

import (
	"context"
	"errors"
	"io"
	"sync"
)

var errClosed = errors.New("readahead: read after Close")

// Reader is an io.ReadCloser over another reader that it reads ahead.
// Close must be called; it waits for the goroutine, so that the
// underlying reader is never used after Close returns.
type Reader struct {
	ctx  context.Context
	pool *sync.Pool
	full chan chunk
	free chan *[]byte
	stop chan struct{}
	done chan struct{}

	cur    chunk  // chunk being handed out
	rest   []byte // its bytes not handed out yet
	err    error  // the reader's error, returned once rest is empty
	closed bool
}

type chunk struct {
	buf *[]byte
	n   int
	err error
}

// New starts reading r into chunks buffers of size bytes. Each buffer is
// handed over once it holds at least min bytes (or at r's end or error):
// a network reader returns 64 KiB or less per call, and every hand-off
// costs two goroutine switches. Reads stop, with ctx's error, once ctx is
// done.
func New(ctx context.Context, r io.Reader, size, chunks, min int) *Reader {
	a := &Reader{
		ctx:  ctx,
		pool: poolFor(size),
		full: make(chan chunk, chunks),
		free: make(chan *[]byte, chunks),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	for range chunks {
		a.free <- a.pool.Get().(*[]byte)
	}
	go a.fill(r, min)
	return a
}

var pools sync.Map // buffer size → *sync.Pool

func poolFor(size int) *sync.Pool {
	if p, ok := pools.Load(size); ok {
		return p.(*sync.Pool)
	}
	p, _ := pools.LoadOrStore(size, &sync.Pool{New: func() any { b := make([]byte, size); return &b }})
	return p.(*sync.Pool)
}

func (a *Reader) fill(r io.Reader, min int) {
	defer close(a.done)
	for {
		var buf *[]byte
		select {
		case buf = <-a.free:
		case <-a.stop:
			return
		}
		// Not io.ReadAtLeast: it turns a short final chunk into
		// io.ErrUnexpectedEOF, indistinguishable from r's own.
		b := *buf
		n := 0
		var err error
		for n < min && err == nil {
			var m int
			m, err = r.Read(b[n:])
			n += m
		}
		select {
		case a.full <- chunk{buf: buf, n: n, err: err}:
		case <-a.stop:
			a.pool.Put(buf)
			return
		}
		if err != nil {
			return
		}
	}
}

// Next returns up to max of the next bytes without copying them; they are
// valid until the next call.
func (a *Reader) Next(max int) ([]byte, error) {
	if a.closed {
		return nil, errClosed
	}
	if err := a.ctx.Err(); err != nil {
		return nil, err
	}
	for len(a.rest) == 0 {
		if a.err != nil {
			return nil, a.err
		}
		if err := a.fetch(); err != nil {
			return nil, err
		}
	}
	b := a.rest
	if len(b) > max {
		b = b[:max]
	}
	a.rest = a.rest[len(b):]
	return b, nil
}

// fetch replaces the drained current chunk with the next one.
func (a *Reader) fetch() error {
	if a.cur.buf != nil {
		a.free <- a.cur.buf
		a.cur = chunk{}
	}
	select {
	case c := <-a.full:
		a.cur, a.rest, a.err = c, (*c.buf)[:c.n], c.err
		return nil
	case <-a.ctx.Done():
		return a.ctx.Err()
	}
}

// Prime waits for the first chunk, if none is buffered yet, and returns
// the reader's error if reading it failed (io.EOF is not an error here).
func (a *Reader) Prime() error {
	if a.closed {
		return errClosed
	}
	if len(a.rest) == 0 && a.err == nil {
		if err := a.fetch(); err != nil {
			return err
		}
	}
	if a.err != nil && a.err != io.EOF {
		return a.err
	}
	return nil
}

func (a *Reader) Read(p []byte) (int, error) {
	b, err := a.Next(len(p))
	return copy(p, b), err
}

// Close stops the goroutine, waits for it (it may be inside a Read of the
// underlying reader) and returns the buffers to the pool.
func (a *Reader) Close() error {
	if a.closed {
		return nil
	}
	a.closed = true
	close(a.stop)
	<-a.done
	if a.cur.buf != nil {
		a.pool.Put(a.cur.buf)
	}
	close(a.full)
	for c := range a.full {
		a.pool.Put(c.buf)
	}
	close(a.free)
	for b := range a.free {
		a.pool.Put(b)
	}
	a.cur, a.rest = chunk{}, nil
	return nil
}

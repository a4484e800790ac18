package encrypt

import (
	"io"
	"sync"
)

// pipelined reads r in a goroutine of its own, up to aheadChunks chunks
// ahead of the caller, so that encryption (in Put) or decryption (in long
// reads) runs on one core while the backend's I/O runs on another. The
// chunks are buffered rather than handed over through an io.Pipe: with a
// pipe each side waits for the other at every chunk, and the hand-offs
// cost as much as the overlap gains. The caller must Close the result,
// which waits for the goroutine, so that r is never read after that.
func pipelined(r io.Reader) *aheadReader {
	a := &aheadReader{
		full: make(chan aheadChunk, aheadChunks),
		free: make(chan *[]byte, aheadChunks),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	for range aheadChunks {
		a.free <- aheadPool.Get().(*[]byte)
	}
	go a.fill(r)
	return a
}

const (
	aheadChunkSize = 4 * payloadSize
	aheadChunks    = 4
)

var aheadPool = sync.Pool{New: func() any { b := make([]byte, aheadChunkSize); return &b }}

type aheadChunk struct {
	buf *[]byte
	n   int
	err error
}

type aheadReader struct {
	full chan aheadChunk
	free chan *[]byte
	stop chan struct{}
	done chan struct{}

	cur    aheadChunk // chunk being handed out
	rest   []byte     // its bytes not handed out yet
	err    error      // r's error, returned once rest is empty
	closed bool
}

func (a *aheadReader) fill(r io.Reader) {
	defer close(a.done)
	for {
		var buf *[]byte
		select {
		case buf = <-a.free:
		case <-a.stop:
			return
		}
		// Fill the chunk (not io.ReadFull, which would turn r's own
		// io.ErrUnexpectedEOF into something else and back).
		b := *buf
		n := 0
		var err error
		for n < len(b) && err == nil {
			var m int
			m, err = r.Read(b[n:])
			n += m
		}
		select {
		case a.full <- aheadChunk{buf: buf, n: n, err: err}:
		case <-a.stop:
			aheadPool.Put(buf)
			return
		}
		if err != nil {
			return
		}
	}
}

func (a *aheadReader) Read(p []byte) (int, error) {
	for len(a.rest) == 0 {
		if a.err != nil {
			return 0, a.err
		}
		if a.cur.buf != nil {
			a.free <- a.cur.buf
			a.cur = aheadChunk{}
		}
		c := <-a.full
		a.cur, a.rest, a.err = c, (*c.buf)[:c.n], c.err
	}
	n := copy(p, a.rest)
	a.rest = a.rest[n:]
	return n, nil
}

// Close stops the goroutine, waits for it (it may be inside r.Read) and
// returns the buffers to the pool.
func (a *aheadReader) Close() error {
	if a.closed {
		return nil
	}
	a.closed = true
	close(a.stop)
	<-a.done
	if a.cur.buf != nil {
		aheadPool.Put(a.cur.buf)
	}
	close(a.full)
	for c := range a.full {
		aheadPool.Put(c.buf)
	}
	close(a.free)
	for b := range a.free {
		aheadPool.Put(b)
	}
	a.cur, a.rest = aheadChunk{}, nil
	return nil
}

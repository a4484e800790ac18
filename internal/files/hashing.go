package files

import (
	"crypto/sha256"
	"hash"
	"io"
)

// hashingReader passes r through while computing the SHA-256 of what was
// read. The hashing runs in a goroutine of its own, fed with copies of the
// bytes in hashChunk batches: SHA-256 runs at about 1.5 GB/s on one core,
// slower than receiving, encrypting and writing, so hashing on the copy's
// own goroutine would set the pace of every upload. The caller must call
// Sum or Close once it has stopped reading, so the goroutine ends.
type hashingReader struct {
	r   io.Reader
	n   int64
	err error // the first read error other than io.EOF

	cur  []byte      // batch being filled
	full chan []byte // batches for the hasher
	free chan []byte // batches the hasher is done with
	done chan struct{}
	h    hash.Hash
	sum  []byte
}

const (
	hashChunk   = 256 << 10
	hashBatches = 4 // memory per upload: hashBatches × hashChunk
)

func newHashingReader(r io.Reader) *hashingReader {
	h := &hashingReader{
		r:    r,
		full: make(chan []byte, hashBatches),
		free: make(chan []byte, hashBatches),
		done: make(chan struct{}),
		h:    sha256.New(),
	}
	for range hashBatches {
		h.free <- make([]byte, 0, hashChunk)
	}
	go func() {
		defer close(h.done)
		for b := range h.full {
			h.h.Write(b)
			h.free <- b[:0]
		}
	}()
	return h
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.n += int64(n)
	for b := p[:n]; len(b) > 0; {
		if h.cur == nil {
			h.cur = <-h.free
		}
		m := copy(h.cur[len(h.cur):cap(h.cur)], b)
		h.cur = h.cur[:len(h.cur)+m]
		b = b[m:]
		if len(h.cur) == cap(h.cur) {
			h.full <- h.cur
			h.cur = nil
		}
	}
	if err != nil && err != io.EOF && h.err == nil {
		h.err = err
	}
	return n, err
}

// Sum waits for the hasher and returns the SHA-256 of everything read.
func (h *hashingReader) Sum() []byte {
	if h.sum == nil {
		if h.cur != nil {
			h.full <- h.cur
			h.cur = nil
		}
		close(h.full)
		<-h.done
		h.sum = h.h.Sum(nil)
	}
	return h.sum
}

// Close ends the hasher; a no-op after Sum.
func (h *hashingReader) Close() { h.Sum() }

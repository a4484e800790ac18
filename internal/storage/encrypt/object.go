package encrypt

import (
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/minio/sio"

	"github.com/veloxhq/velox/internal/storage"
)

// layout places the DARE stream of each part in the stored object.
type layout struct {
	parts  []int64 // plaintext size of each part
	pstart []int64 // plaintext offset of each part
	cstart []int64 // ciphertext offset of each part
	size   int64   // plaintext size
}

// object decrypts a stored blob. It reads lazily: Seek only records the
// position, and the first Read after it seeks the inner object to the
// start of the package holding that position, so a range costs only the
// packages it touches.
type object struct {
	s     *Store
	key   string
	inner storage.Object
	dk    []byte
	l     *layout

	off      int64     // plaintext position
	r        io.Reader // decrypts the current part from off, or nil
	left     int64     // plaintext bytes left in the current part
	innerPos int64     // position of inner, to avoid needless seeks
	err      error     // sticky integrity error

	// Long sequential reads decrypt ahead on several cores (ahead), once
	// run bytes were read in a row; short ranges never read ahead, so a
	// 1-byte range still fetches one package.
	ahead io.ReadCloser
	run   int64
	part  int // the part o.r decrypts

	scratch []byte // Next's buffer when it has to copy
}

// readAheadAfter is how much a reader must read in sequence before
// decryption runs ahead of it.
const readAheadAfter = 1 << 20

// stop ends the current stream and any read-ahead; after it returns no
// goroutine touches inner or innerPos.
func (o *object) stop() {
	if o.ahead != nil {
		o.ahead.Close()
		o.ahead = nil
	}
	o.r = nil
}

func (o *object) Size() int64 { return o.l.size }

func (o *object) Close() error {
	o.stop()
	return o.inner.Close()
}

func (o *object) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = o.off + offset
	case io.SeekEnd:
		abs = o.l.size + offset
	default:
		return 0, errors.New("encrypt: seek: invalid whence")
	}
	if abs < 0 {
		return 0, errors.New("encrypt: seek: negative position")
	}
	if abs != o.off {
		o.stop()
		o.run = 0
	}
	o.off = abs
	return abs, nil
}

// start prepares o.r to decrypt from o.off.
func (o *object) start() error {
	l := o.l
	// The part holding off: the last one starting at or before it that
	// is not empty.
	i := sort.Search(len(l.parts), func(i int) bool { return l.pstart[i] > o.off }) - 1
	for i >= 0 && l.parts[i] == 0 {
		i--
	}
	if i < 0 || o.off >= l.pstart[i]+l.parts[i] {
		return io.EOF
	}
	within := o.off - l.pstart[i]
	pkg := within / payloadSize
	cpos := l.cstart[i] + pkg*packageSize
	cend := l.cstart[i] + encSize(l.parts[i])
	if cpos != o.innerPos {
		if _, err := o.inner.Seek(cpos, io.SeekStart); err != nil {
			return err
		}
		o.innerPos = cpos
	}
	key, seq := partCipher(o.dk, i)
	seq += uint32(pkg)
	// The counting reader keeps innerPos true whatever sio reads ahead.
	src := &posReader{r: io.LimitReader(o.inner, cend-cpos), pos: &o.innerPos}
	dr, err := sio.DecryptReader(src, config(key, seq))
	if err != nil {
		return err
	}
	if skip := within % payloadSize; skip > 0 {
		if _, err := io.CopyN(io.Discard, dr, skip); err != nil {
			return o.fail(err)
		}
	}
	o.r = dr
	o.part = i
	o.left = l.parts[i] - within
	return nil
}

// readAhead hands the rest of the current part, from o.off (at a package
// boundary), to a parallelDecrypter.
func (o *object) readAhead() {
	l, i := o.l, o.part
	pkg := (o.off - l.pstart[i]) / payloadSize
	cpos := l.cstart[i] + pkg*packageSize
	if cpos != o.innerPos || decryptWorkers() < 2 {
		// With one worker to spare, or if sio read past the boundary (it
		// never does at one), keep the sequential reader, decrypting a
		// chunk ahead in one goroutine: with one decrypting worker, the
		// extra hand-offs of batches cost more than they gain.
		o.ahead = pipelined(o.r)
		o.r = o.ahead
		return
	}
	cend := l.cstart[i] + encSize(l.parts[i])
	src := &posReader{r: io.LimitReader(o.inner, cend-cpos), pos: &o.innerPos}
	key, seq := partCipher(o.dk, i)
	o.ahead = newParallelDecrypter(src, cend-cpos, key, seq+uint32(pkg))
	o.r = o.ahead
}

func (o *object) Read(p []byte) (int, error) {
	b, err := o.read(p, len(p))
	return len(b), err
}

// Next returns up to max of the next plaintext bytes, valid until the next
// call of any method. While decryption reads ahead they are its own buffers, not copies,
// so a download writes them to the client straight away
// (internal/blobhttp).
func (o *object) Next(max int) ([]byte, error) {
	return o.read(nil, max)
}

// scratchSize bounds what Next copies at once when it has to copy.
const scratchSize = 4 * payloadSize

// read reads up to max bytes into p, or, when p is nil, returns them in a
// buffer of its own (valid until the next call).
func (o *object) read(p []byte, max int) ([]byte, error) {
	if o.err != nil {
		return nil, o.err
	}
	if o.off >= o.l.size {
		return nil, io.EOF
	}
	if o.r != nil && o.ahead == nil && o.run >= readAheadAfter && o.left > 4*payloadSize {
		if rem := (o.off - o.l.pstart[o.part]) % payloadSize; rem != 0 {
			// Read up to the next package, where the batches can start.
			max = int(min(int64(max), payloadSize-rem))
		} else {
			o.readAhead()
		}
	}
	if o.r == nil {
		if err := o.start(); err != nil {
			if o.err != nil {
				return nil, o.err
			}
			return nil, err
		}
	}
	if int64(max) > o.left {
		max = int(o.left)
	}
	var b []byte
	var err error
	borrowed := false
	if nx, ok := o.r.(storage.Nexter); ok && p == nil { // readahead.Reader, parallelDecrypter
		b, err = nx.Next(max)
		borrowed = true
	} else {
		if p == nil {
			p = o.scratchBuf(max)
			max = min(max, len(p))
		}
		var n int
		n, err = o.r.Read(p[:max])
		b = p[:n]
	}
	n := len(b)
	o.off += int64(n)
	o.left -= int64(n)
	o.run += int64(n)
	if o.left == 0 {
		if borrowed && n > 0 {
			// What follows reads on and stops the read-ahead, which
			// takes its buffers back: keep the bytes.
			buf := o.scratchBuf(n)
			if n > len(buf) {
				buf = make([]byte, n) // a parallel batch: larger than scratch
				o.scratch = buf
			}
			b = buf[:copy(buf, b)]
		}
		if err == nil {
			// The stream must end here, with its final package: this
			// catches a cut at a package boundary even where the
			// recorded size is unknown. It reads nothing more from inner.
			var one [1]byte
			if m, xerr := o.r.Read(one[:]); m > 0 {
				err = errors.New("data after the end of the stream")
			} else if xerr != io.EOF {
				err = xerr
			}
		}
		// The next part is a new stream.
		o.stop()
		if err == io.EOF {
			err = nil
		}
	}
	if err != nil {
		return b, o.fail(err)
	}
	return b, nil
}

// scratchBuf returns Next's copy buffer, allocated on first use no larger
// than scratchSize or what the blob holds, so a small file costs little.
func (o *object) scratchBuf(want int) []byte {
	if o.scratch == nil {
		o.scratch = make([]byte, min(int64(scratchSize), max(int64(want), o.l.size)))
	}
	return o.scratch
}

// fail turns an error while decrypting into ErrCorrupt: an authentication
// failure, or the object ending early. Errors of the backend pass through.
func (o *object) fail(err error) error {
	var se sio.Error
	switch {
	case errors.As(err, &se), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		o.err = o.s.corrupt(o.key, fmt.Errorf("at offset %d: %v", o.off, err))
		return o.err
	}
	return err
}

type posReader struct {
	r   io.Reader
	pos *int64
}

func (p *posReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	*p.pos += int64(n)
	return n, err
}

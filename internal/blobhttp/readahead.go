package blobhttp

import (
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/veloxhq/velox/internal/readahead"
	"github.com/veloxhq/velox/internal/storage"
)

// readAheadSize is the size of each of the two buffers a download from a
// remote store reads into, and readAheadMin what each must hold before it
// goes to the writer. A reader a buffer ahead of the writer keeps bytes
// flowing from the store while the previous ones go to the client; large
// reads take whatever the store's connection has buffered in one call.
// http.ServeContent alone alternates 32 KiB reads and writes on one
// goroutine, so each side waits for the other.
const (
	readAheadSize = 1 << 20
	readAheadMin  = readAheadSize / 4
)

// readAhead is an io.ReadSeeker over a storage.Object that reads ahead
// (internal/readahead), started by the first Read and stopped by a Seek
// elsewhere and by Close. Seeks are lazy: they take effect at the next
// Read, so http.ServeContent's probe (seek to the end for the size, back
// to the start) keeps what was read ahead. Close must be called before
// the object is closed.
type readAhead struct {
	ctx  context.Context
	obj  storage.Object
	nx   storage.Nexter    // obj, when it reads ahead on its own
	head []byte            // bytes prime read from nx, not handed out yet
	r    *readahead.Reader // nil until the first read after a seek
	pos  int64             // offset of the next byte r returns (or obj, if r is nil)
	want int64             // offset the next Read returns from, set by Seek
}

func newReadAhead(ctx context.Context, obj storage.Object) *readAhead {
	ra := &readAhead{ctx: ctx, obj: obj}
	ra.nx, _ = obj.(storage.Nexter)
	return ra
}

// seek moves obj to want if needed.
func (ra *readAhead) seek() error {
	if ra.want != ra.pos {
		ra.halt()
		pos, err := ra.obj.Seek(ra.want, io.SeekStart)
		if err != nil {
			ra.want = ra.pos
			return err
		}
		ra.pos, ra.want = pos, pos
	}
	return nil
}

// reader moves to want if needed and returns the running reader.
func (ra *readAhead) reader() (*readahead.Reader, error) {
	if err := ra.seek(); err != nil {
		return nil, err
	}
	if ra.r == nil {
		ra.r = readahead.New(ra.ctx, ra.obj, readAheadSize, 2, readAheadMin)
	}
	return ra.r, nil
}

// prime reads the first chunk from the current position, if not read yet,
// and returns the store's error if that failed: a caller can then answer
// with an error before any byte of the response is written.
func (ra *readAhead) prime() error {
	if ra.nx != nil {
		return ra.primeNexter()
	}
	r, err := ra.reader()
	if err != nil {
		return err
	}
	return r.Prime()
}

func (ra *readAhead) Read(p []byte) (int, error) {
	b, err := ra.next(int64(len(p)))
	return copy(p, b), err
}

// next returns up to max of the next bytes, valid until the next call,
// without copying them.
func (ra *readAhead) next(max int64) ([]byte, error) {
	if ra.nx != nil {
		return ra.nextNexter(max)
	}
	r, err := ra.reader()
	if err != nil {
		return nil, err
	}
	b, err := r.Next(int(min(max, readAheadSize)))
	ra.pos += int64(len(b))
	ra.want = ra.pos
	return b, err
}

// primeNexter reads the first readAheadMin bytes (or up to the end) from
// a Nexter into head, so that an error there comes before any response.
func (ra *readAhead) primeNexter() error {
	if err := ra.seek(); err != nil {
		return err
	}
	if len(ra.head) > 0 {
		return nil
	}
	head := make([]byte, 0, max(0, min(readAheadMin, ra.obj.Size()-ra.pos)))
	for len(head) < readAheadMin {
		b, err := ra.nx.Next(readAheadMin - len(head))
		head = append(head, b...)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	ra.head = head
	return nil
}

func (ra *readAhead) nextNexter(max int64) ([]byte, error) {
	if err := ra.seek(); err != nil {
		return nil, err
	}
	var b []byte
	var err error
	if len(ra.head) > 0 {
		b = ra.head[:min(max, int64(len(ra.head)))]
		ra.head = ra.head[len(b):]
	} else {
		b, err = ra.nx.Next(int(min(max, readAheadSize)))
	}
	ra.pos += int64(len(b))
	ra.want = ra.pos
	return b, err
}

// halt stops reading ahead; the object's position is then unknown, so the
// next read seeks.
func (ra *readAhead) halt() {
	if ra.nx != nil {
		if len(ra.head) > 0 {
			ra.head = nil
			ra.pos = -1
		}
		return
	}
	if ra.r != nil {
		ra.r.Close()
		ra.r = nil
		ra.pos = -1
	}
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
// the read-ahead buffers to the client as they are, up to a megabyte at a
// time, instead of through a 32 KiB copy buffer.
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

package encrypt

import (
	"bytes"
	"io"
	"runtime"
	"sync"

	"github.com/minio/sio"
)

// parallelDecrypter decrypts the rest of one part's DARE stream on
// several cores: a reader goroutine cuts the ciphertext into batches of
// whole packages, workers decrypt the batches independently (each package
// carries its sequence number, so a batch is a valid DARE stream starting
// at its first package's number) and Read returns the plaintext in order.
// One core decrypts AES-256-GCM at about the speed a page-cache read
// delivers plaintext, so a single decrypting goroutine halves local reads.
//
// The last batch is decrypted to the end of the stream, which makes sio
// check the final package: a stream cut at a package boundary or followed
// by extra bytes fails there, as it does in the sequential reader.
type parallelDecrypter struct {
	order chan chan decResult // results in stream order
	stop  chan struct{}
	wg    sync.WaitGroup

	cur    decResult
	rest   []byte
	err    error
	closed bool
}

const (
	batchPackages = 8 // 512 KiB of plaintext per batch
	batchCipher   = batchPackages * packageSize
	batchPlain    = batchPackages * payloadSize
)

var (
	cipherPool = sync.Pool{New: func() any { b := make([]byte, batchCipher); return &b }}
	plainPool  = sync.Pool{New: func() any { b := make([]byte, batchPlain); return &b }}
)

type decJob struct {
	ct   *[]byte
	n    int
	seq  uint32
	last bool
	res  chan decResult
}

type decResult struct {
	pt  *[]byte
	n   int
	err error
}

// decryptWorkers is how many batches are decrypted at once: half the
// cores, leaving the rest to the network and file I/O of the same
// download, and at most 4.
// A variable so that tests can force parallel decryption on small machines.
var decryptWorkers = func() int { return min(runtime.GOMAXPROCS(0)/2, 4) }

// newParallelDecrypter decrypts src, which holds the packages of one
// stream from sequence number seq to the end of the stream, remaining
// ciphertext bytes in all.
func newParallelDecrypter(src io.Reader, remaining int64, dk []byte, seq uint32) *parallelDecrypter {
	workers := decryptWorkers()
	p := &parallelDecrypter{
		// Bounds the batches in flight: memory is about
		// 2 × (workers+1) × 512 KiB.
		order: make(chan chan decResult, workers+1),
		stop:  make(chan struct{}),
	}
	jobs := make(chan decJob)
	p.wg.Add(1 + workers)
	for range workers {
		go func() {
			defer p.wg.Done()
			for j := range jobs {
				j.res <- decryptBatch(j, dk)
			}
		}()
	}
	go func() {
		defer p.wg.Done()
		defer close(jobs)
		defer close(p.order)
		for remaining > 0 {
			ct := cipherPool.Get().(*[]byte)
			want := int(min(int64(batchCipher), remaining))
			n, err := io.ReadFull(src, (*ct)[:want])
			res := make(chan decResult, 1)
			select {
			case p.order <- res:
			case <-p.stop:
				cipherPool.Put(ct)
				return
			}
			if err != nil {
				// The backend failed, or the object is shorter than its
				// size said (io.ErrUnexpectedEOF: corrupt).
				cipherPool.Put(ct)
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				res <- decResult{err: err}
				return
			}
			remaining -= int64(n)
			select {
			case jobs <- decJob{ct: ct, n: n, seq: seq, last: remaining == 0, res: res}:
			case <-p.stop:
				cipherPool.Put(ct)
				res <- decResult{err: io.ErrClosedPipe}
				return
			}
			seq += batchPackages
		}
	}()
	return p
}

func decryptBatch(j decJob, dk []byte) decResult {
	defer cipherPool.Put(j.ct)
	pt := plainPool.Get().(*[]byte)
	dr, err := sio.DecryptReader(bytes.NewReader((*j.ct)[:j.n]), config(dk, j.seq))
	if err != nil {
		plainPool.Put(pt)
		return decResult{err: err}
	}
	var n int
	if j.last {
		// To the end, so that sio checks the final package; a payload
		// larger than the batch's means extra data after it.
		n, err = io.ReadFull(dr, *pt)
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			err = nil
		} else if err == nil {
			var b [1]byte
			if m, xerr := dr.Read(b[:]); m > 0 || xerr != io.EOF {
				err = io.ErrUnexpectedEOF
				if xerr != nil && xerr != io.EOF {
					err = xerr
				}
			}
		}
	} else {
		if j.n%packageSize != 0 {
			plainPool.Put(pt)
			return decResult{err: io.ErrUnexpectedEOF}
		}
		n, err = io.ReadFull(dr, (*pt)[:j.n/packageSize*payloadSize])
	}
	if err != nil {
		plainPool.Put(pt)
		return decResult{err: err}
	}
	return decResult{pt: pt, n: n}
}

func (p *parallelDecrypter) Read(b []byte) (int, error) {
	r, err := p.Next(len(b))
	return copy(b, r), err
}

// Next returns up to max of the next plaintext bytes without copying them;
// they are valid until the next call.
func (p *parallelDecrypter) Next(max int) ([]byte, error) {
	for len(p.rest) == 0 {
		if p.err != nil {
			return nil, p.err
		}
		if p.cur.pt != nil {
			plainPool.Put(p.cur.pt)
			p.cur = decResult{}
		}
		res, ok := <-p.order
		if !ok {
			p.err = io.EOF
			continue
		}
		p.cur = <-res
		if p.cur.err != nil {
			p.err = p.cur.err
			continue
		}
		p.rest = (*p.cur.pt)[:p.cur.n]
	}
	r := p.rest[:min(max, len(p.rest))]
	p.rest = p.rest[len(r):]
	return r, nil
}

// Close stops the goroutines and waits for them (the reader may be inside
// a backend Read).
func (p *parallelDecrypter) Close() error {
	if p.closed {
		return nil
	}
	p.closed = true
	close(p.stop)
	// Workers never block (results are buffered), and the reader gives
	// up on stop, so this ends; then every queued result has its value.
	p.wg.Wait()
	for res := range p.order {
		if r := <-res; r.pt != nil {
			plainPool.Put(r.pt)
		}
	}
	if p.cur.pt != nil {
		plainPool.Put(p.cur.pt)
	}
	p.cur, p.rest = decResult{}, nil
	return nil
}

package proxy

import (
	"crypto/tls"
	"net"
	"sync"
)

// batchConn sits under a *tls.Conn and lets one Write of the connection
// above go out in one system call, however many records crypto/tls cuts
// it into.
//
// Why: crypto/tls writes every record (at most 16 KiB of plaintext) with
// a system call of its own. An HTTP/2 DATA frame of 16 KiB (the frame size
// clients ask for) is 9 bytes over that, so each frame became a 16 KiB
// record and a 9-byte one: two system calls and two TCP segments per
// frame. HTTP/1.1 bodies, written in 64 KiB pieces, took four system
// calls each. Batched, both take one (bench/RESULTS.md has the figures).
//
// Writes that crypto/tls makes outside a batch (alerts, a reply to a key
// update, close_notify) go straight through, in the order the TLS layer
// makes them.
type batchConn struct {
	net.Conn

	wmu sync.Mutex // one batch at a time

	mu  sync.Mutex
	buf *[]byte // collects records while a batch is open
	err error   // a batch that failed to go out: the record stream has a gap
}

// batchLimit is the most plaintext put into one batch: four full records.
const batchLimit = 4 << 14

// batchMin is the size below which a write is one record anyway (records
// start at about one TCP segment on a new connection) and batching would
// only add a copy.
const batchMin = 1 << 10

var batchBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, batchLimit+4<<6) // room for four records' overhead
	return &b
}}

func newBatchConn(c net.Conn) *batchConn { return &batchConn{Conn: c} }

func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if c.buf != nil {
		*c.buf = append(*c.buf, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// writeTLS writes p through tc, which must run over c and have completed
// its handshake (a batch holds back every byte until it ends, so a
// handshake inside one would wait forever for the peer).
func (c *batchConn) writeTLS(tc *tls.Conn, p []byte) (int, error) {
	if len(p) < batchMin {
		return tc.Write(p)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	total := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), batchLimit)]
		n, err := c.batch(tc, chunk)
		total += n
		if err != nil {
			return total, err
		}
		p = p[len(chunk):]
	}
	return total, nil
}

func (c *batchConn) batch(tc *tls.Conn, p []byte) (int, error) {
	buf := batchBufs.Get().(*[]byte)
	c.mu.Lock()
	c.buf = buf
	c.mu.Unlock()
	n, err := tc.Write(p)
	c.mu.Lock()
	c.buf = nil
	if len(*buf) > 0 && c.err == nil {
		if _, werr := c.Conn.Write(*buf); werr != nil {
			// crypto/tls counted these records as sent; nothing may be
			// written after them.
			c.err = werr
			if err == nil {
				n, err = 0, werr
			}
		}
	}
	if err == nil && c.err != nil {
		n, err = 0, c.err
	}
	c.mu.Unlock()
	*buf = (*buf)[:0]
	batchBufs.Put(buf)
	return n, err
}

// batchedTLS is a *tls.Conn whose writes are batched. It deliberately has
// no ConnectionState method: net/http serves HTTP/2 on a connection
// handed to it only when it sees no TLS state (as prior-knowledge HTTP/2),
// and the state travels in the connection's context instead (see
// newFastServer).
type batchedTLS struct {
	net.Conn // the *tls.Conn
	tc       *tls.Conn
	bc       *batchConn
	state    *tls.ConnectionState
}

func newBatchedTLS(tc *tls.Conn, bc *batchConn) *batchedTLS {
	state := tc.ConnectionState()
	return &batchedTLS{Conn: tc, tc: tc, bc: bc, state: &state}
}

func (c *batchedTLS) Write(p []byte) (int, error) { return c.bc.writeTLS(c.tc, p) }

// tlsState is the handshake's outcome, for the request context.
func (c *batchedTLS) tlsState() *tls.ConnectionState { return c.state }

package readahead

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"testing/iotest"
	"time"
)

func data(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

func TestReadsEverythingInOrder(t *testing.T) {
	src := data(3<<20 + 12345)
	for _, tc := range []struct {
		name string
		r    io.Reader
		min  int
	}{
		{"one byte at a time, gathered", iotest.OneByteReader(bytes.NewReader(src)), 64 << 10},
		{"half reads, full chunks", iotest.HalfReader(bytes.NewReader(src)), 256 << 10},
		{"whole", bytes.NewReader(src), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := New(context.Background(), tc.r, 256<<10, 3, tc.min)
			defer a.Close()
			if err := iotest.TestReader(a, src); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// failing returns its bytes, then err.
type failing struct {
	r   io.Reader
	err error
}

func (f *failing) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		err = f.err
	}
	return n, err
}

func TestPassesErrorsAfterTheBytes(t *testing.T) {
	// Even io.ErrUnexpectedEOF, which must not pass for a clean end.
	src := data(1 << 20)
	for _, want := range []error{io.ErrUnexpectedEOF, errors.New("connection reset")} {
		a := New(context.Background(), &failing{iotest.HalfReader(bytes.NewReader(src)), want}, 64<<10, 2, 64<<10)
		got, err := io.ReadAll(a)
		a.Close()
		if !errors.Is(err, want) || !bytes.Equal(got, src) {
			t.Fatalf("read %d of %d bytes, err %v; want all and %v", len(got), len(src), err, want)
		}
	}
}

func TestPrime(t *testing.T) {
	boom := errors.New("integrity check failed")
	// The failure lies within the first chunk: Prime reports it.
	a := New(context.Background(), &failing{bytes.NewReader(data(1000)), boom}, 64<<10, 2, 64<<10)
	if err := a.Prime(); !errors.Is(err, boom) {
		t.Fatalf("Prime = %v, want %v", err, boom)
	}
	a.Close()
	// A clean, empty or short source primes fine and reads back whole.
	for _, n := range []int{0, 10, 200 << 10} {
		src := data(n)
		a := New(context.Background(), bytes.NewReader(src), 64<<10, 2, 64<<10)
		if err := a.Prime(); err != nil {
			t.Fatalf("size %d: Prime = %v", n, err)
		}
		got, err := io.ReadAll(a)
		a.Close()
		if err != nil || !bytes.Equal(got, src) {
			t.Fatalf("size %d: read %d bytes, %v", n, len(got), err)
		}
	}
}

// blocking blocks in Read until released, like a stalled network peer;
// entered is closed once a Read has begun.
type blocking struct {
	entered chan struct{}
	release chan struct{}
}

func (b *blocking) Read(p []byte) (int, error) {
	close(b.entered)
	<-b.release
	return 0, io.EOF
}

func TestCancelAndClose(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	src := &blocking{entered: make(chan struct{}), release: make(chan struct{})}
	a := New(ctx, src, 4096, 2, 1)
	<-src.entered
	cancel()
	if _, err := a.Read(make([]byte, 10)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Read after cancel = %v", err)
	}
	// Close waits for the goroutine, which is inside src.Read.
	closed := make(chan struct{})
	go func() { a.Close(); close(closed) }()
	time.Sleep(20 * time.Millisecond)
	select {
	case <-closed:
		t.Fatal("Close returned while the source was still being read")
	default:
	}
	close(src.release)
	<-closed
	if _, err := a.Read(make([]byte, 10)); err == nil {
		t.Fatal("Read after Close succeeded")
	}
	a.Close()
}

package files

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

func TestHashingReader(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{0, 1, hashChunk - 1, hashChunk, hashChunk + 1, 5*hashChunk + 12345} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		for _, r := range map[string]io.Reader{
			"one byte": iotest.OneByteReader(bytes.NewReader(data)),
			"half":     iotest.HalfReader(bytes.NewReader(data)),
			"whole":    bytes.NewReader(data),
		} {
			h := newHashingReader(r)
			got, err := io.ReadAll(h)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("size %d: passed through %d bytes, err %v", size, len(got), err)
			}
			want := sha256.Sum256(data)
			if sum := h.Sum(); !bytes.Equal(sum, want[:]) || h.n != int64(size) {
				t.Fatalf("size %d: sum %x n %d, want %x n %d", size, sum, h.n, want, size)
			}
			h.Close() // idempotent after Sum
		}
	}
}

func TestHashingReaderKeepsReadError(t *testing.T) {
	boom := errors.New("connection reset")
	h := newHashingReader(io.MultiReader(bytes.NewReader(make([]byte, 1000)), iotest.ErrReader(boom)))
	defer h.Close()
	if _, err := io.ReadAll(h); !errors.Is(err, boom) || !errors.Is(h.err, boom) || h.n != 1000 {
		t.Fatalf("err %v, recorded %v, n %d", err, h.err, h.n)
	}
}

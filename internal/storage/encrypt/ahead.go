package encrypt

import (
	"context"
	"io"

	"github.com/veloxhq/velox/internal/readahead"
)

// pipelined reads r (and so runs the encryption or decryption behind it)
// in a goroutine of its own, up to four 256 KiB chunks ahead of the
// caller, so that the cipher runs on one core while the backend's I/O
// runs on another. The caller must Close the result, which waits for the
// goroutine, so that r is never read after that.
func pipelined(r io.Reader) io.ReadCloser {
	const chunk = 4 * payloadSize
	return readahead.New(context.Background(), r, chunk, 4, chunk)
}

package dav

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/veloxhq/velox/internal/storage"
)

// chunkedPut sends chunk i of a legacy chunked upload of data in chunks
// of size chunk, as the Nextcloud client does.
func chunkedPut(e *env, dir, name, transfer string, data []byte, chunk, i int, hdr ...string) (*http.Response, string) {
	e.t.Helper()
	count := (len(data) + chunk - 1) / chunk
	part := data[i*chunk : min(len(data), (i+1)*chunk)]
	h := append([]string{"OC-Chunked", "1", "OC-Total-Length", strconv.Itoa(len(data))}, hdr...)
	return e.do("PUT", fmt.Sprintf("%s%s/%s-chunking-%s-%d-%d", aliceRoot, dir, name, transfer, count, i), string(part), h...)
}

func TestChunkedPut(t *testing.T) {
	const chunk = 1 << 20
	data := make([]byte, 2*chunk+100)
	rand.Read(data)

	t.Run("InOrder", func(t *testing.T) {
		e := newEnv(t)
		e.must(201, "MKCOL", aliceRoot+"/dir", "")
		for i := range 3 {
			resp, body := chunkedPut(e, "/dir", "big.bin", "1234", data, chunk, i, "X-OC-Mtime", "1600000000")
			if resp.StatusCode != 201 {
				t.Fatalf("chunk %d: %d %s", i, resp.StatusCode, body)
			}
			// Only the last answer carries the ETag: the client's signal
			// that the file is complete.
			if last := i == 2; (resp.Header.Get("ETag") != "") != last || (resp.Header.Get("OC-FileId") != "") != last {
				t.Fatalf("chunk %d: ETag %q, OC-FileId %q", i, resp.Header.Get("ETag"), resp.Header.Get("OC-FileId"))
			}
			if i < 2 {
				// Nothing is visible before the last chunk.
				if resp, _ := e.do("GET", aliceRoot+"/dir/big.bin", ""); resp.StatusCode != 404 {
					t.Fatalf("file visible after chunk %d: %d", i, resp.StatusCode)
				}
			}
		}
		resp, body := e.must(200, "GET", aliceRoot+"/dir/big.bin", "")
		if body != string(data) {
			t.Fatalf("assembled file differs: %d bytes", len(body))
		}
		if n, err := e.node("/dir/big.bin"); err != nil || n.MTime.Unix() != 1600000000 || `"`+n.ETag+`"` != resp.Header.Get("ETag") {
			t.Fatalf("node %+v, %v; GET ETag %s", n, err, resp.Header.Get("ETag"))
		}
		// No chunk file is left in the tree.
		_, list := e.must(207, "PROPFIND", aliceRoot+"/dir", "", "Depth", "1")
		if bytes.Contains([]byte(list), []byte("chunking")) {
			t.Fatalf("a chunk shows in the listing:\n%s", list)
		}
	})

	t.Run("OutOfOrderAndRetried", func(t *testing.T) {
		e := newEnv(t)
		// The last chunk first (its size gives the others'), then chunk 0
		// twice, the first time with other bytes.
		if resp, body := chunkedPut(e, "", "f.bin", "77", data, chunk, 2); resp.StatusCode != 201 || resp.Header.Get("ETag") != "" {
			t.Fatalf("last chunk first: %d %s", resp.StatusCode, body)
		}
		wrong := bytes.Repeat([]byte{'x'}, len(data))
		chunkedPut(e, "", "f.bin", "77", wrong, chunk, 0)
		chunkedPut(e, "", "f.bin", "77", data, chunk, 0)
		resp, body := chunkedPut(e, "", "f.bin", "77", data, chunk, 1)
		if resp.StatusCode != 201 || resp.Header.Get("ETag") == "" {
			t.Fatalf("completing chunk: %d %s", resp.StatusCode, body)
		}
		if _, body := e.must(200, "GET", aliceRoot+"/f.bin", ""); body != string(data) {
			t.Fatal("assembled file differs")
		}
	})

	t.Run("Overwrite", func(t *testing.T) {
		e := newEnv(t)
		resp, _ := e.must(201, "PUT", aliceRoot+"/f.bin", "old")
		etag := resp.Header.Get("ETag")
		if resp, _ := chunkedPut(e, "", "f.bin", "5", data, chunk, 0, "If-Match", `"stale"`); resp.StatusCode != 412 {
			t.Fatalf("stale If-Match: %d, want 412", resp.StatusCode)
		}
		for i := range 3 {
			if resp, body := chunkedPut(e, "", "f.bin", "6", data, chunk, i, "If-Match", etag); resp.StatusCode != 201 {
				t.Fatalf("chunk %d: %d %s", i, resp.StatusCode, body)
			}
		}
		if _, body := e.must(200, "GET", aliceRoot+"/f.bin", ""); body != string(data) {
			t.Fatal("overwritten file differs")
		}
	})

	// The desktop client's chunks are 10 MB, so a file above 10 GB comes
	// in more than 1,000 chunks: such a transfer must be taken, up to
	// storage.MaxParts chunks.
	t.Run("ManyChunks", func(t *testing.T) {
		e := newEnv(t)
		one := data[:chunk]
		for _, tc := range []struct {
			count, want int
		}{{1500, 201}, {storage.MaxParts, 201}, {storage.MaxParts + 1, 400}} {
			total := strconv.Itoa(tc.count * chunk)
			resp, body := e.do("PUT", fmt.Sprintf("%s/big%d.bin-chunking-42-%d-0", aliceRoot, tc.count, tc.count), string(one),
				"OC-Chunked", "1", "OC-Total-Length", total)
			if resp.StatusCode != tc.want || resp.Header.Get("ETag") != "" {
				t.Errorf("first of %d chunks: %d (ETag %q) %s, want %d without ETag", tc.count, resp.StatusCode, resp.Header.Get("ETag"), body, tc.want)
			}
			if tc.want == 400 && !strings.Contains(body, "larger chunks") {
				t.Errorf("too many chunks: the answer does not say what to do: %s", body)
			}
		}
	})

	t.Run("BadRequests", func(t *testing.T) {
		e := newEnv(t)
		for _, tc := range []struct {
			path string
			hdr  []string
			want int
		}{
			{"/f.bin", []string{"OC-Chunked", "1", "OC-Total-Length", "10"}, 400},                     // not a chunk name
			{"/f.bin-chunking-1-2-5", []string{"OC-Chunked", "1", "OC-Total-Length", "10"}, 400},      // index ≥ count
			{"/f.bin-chunking-1-2-0", []string{"OC-Chunked", "1"}, 400},                               // no total
			{"/f.bin-chunking-1-2-0", []string{"OC-Chunked", "1", "OC-Total-Length", "-4"}, 400},      // negative total
			{"/nodir/f.bin-chunking-1-1-0", []string{"OC-Chunked", "1", "OC-Total-Length", "3"}, 409}, // no parent
			{"/f.bin-chunking-9-3-2", []string{"OC-Chunked", "1", "OC-Total-Length", "2000004"}, 400}, // sizes do not add up
		} {
			resp, body := e.do("PUT", aliceRoot+tc.path, "abc", tc.hdr...)
			if resp.StatusCode != tc.want {
				t.Errorf("PUT %s %v: %d %s, want %d", tc.path, tc.hdr, resp.StatusCode, body, tc.want)
			}
		}
		// A chunk whose total differs from the transfer's first chunk.
		chunkedPut(e, "", "g.bin", "3", data, chunk, 0)
		if resp, _ := e.do("PUT", aliceRoot+"/g.bin-chunking-3-3-1", string(data[chunk:2*chunk]),
			"OC-Chunked", "1", "OC-Total-Length", "999"); resp.StatusCode != 400 {
			t.Errorf("changed OC-Total-Length: %d, want 400", resp.StatusCode)
		}
	})
}

// Chunking NG is not implemented: a client that tries it (rclone with
// vendor=nextcloud) gets 501 and a message that says what to do instead.
func TestChunkingNGRefusedClearly(t *testing.T) {
	e := newEnv(t)
	for _, m := range []string{"MKCOL", "PUT", "MOVE"} {
		resp, body := e.do(m, "/remote.php/dav/uploads/alice/rclone-chunked-upload-1/000000000000000-000000010485759", "x")
		if resp.StatusCode != http.StatusNotImplemented || !strings.Contains(body, "vendor=owncloud") {
			t.Errorf("%s in uploads: %d %s", m, resp.StatusCode, body)
		}
	}
}

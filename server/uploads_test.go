package server_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestResumableUploadOverHTTP(t *testing.T) {
	h := newHarness(t)
	const chunk = 1 << 20
	data := bytes.Repeat([]byte("0123456789abcdef"), (2*chunk+100)/16)
	sum := sha256.Sum256(data)
	body := fmt.Sprintf(`{"parent_id":%q,"name":"resumed.bin","size":%d,"chunk_size":%d,"sha256":%q}`, h.root, len(data), chunk, hex.EncodeToString(sum[:]))
	type upload struct {
		ID        string
		Chunks    int
		ChunkSize int64 `json:"chunk_size"`
		Received  []int
	}
	up := decode[upload](t, mustDo(h, 201, "POST", "/api/v1/uploads", body))
	if up.Chunks != 3 || up.ChunkSize != chunk || len(up.Received) != 0 {
		t.Fatalf("session %+v", up)
	}
	// Chunk 2 by index, chunk 0 by offset; chunk 1 missing.
	if resp, b := h.do("PUT", "/api/v1/uploads/"+up.ID+"/chunks/2", bytes.NewReader(data[2*chunk:])); resp.StatusCode != 200 {
		t.Fatalf("chunk 2: %d %s", resp.StatusCode, b)
	}
	if resp, b := h.do("PUT", "/api/v1/uploads/"+up.ID+"/data?offset=0", bytes.NewReader(data[:chunk])); resp.StatusCode != 200 {
		t.Fatalf("offset 0: %d %s", resp.StatusCode, b)
	}
	resp, b := h.do("PUT", "/api/v1/uploads/"+up.ID+"/data?offset=5", bytes.NewReader(data[:chunk]))
	wantError(t, resp, b, 400, "invalid_request")
	resp, b = h.do("POST", "/api/v1/uploads/"+up.ID+"/finish", nil)
	wantError(t, resp, b, 400, "incomplete_upload")
	if !strings.Contains(string(b), "Chunks 1 have not arrived") {
		t.Errorf("message %s", b)
	}
	// The list shows it (what a reloaded page resumes from).
	list := decode[struct{ Items []upload }](t, mustDo(h, 200, "GET", "/api/v1/uploads", ""))
	if len(list.Items) != 1 || len(list.Items[0].Received) != 2 {
		t.Fatalf("list %+v", list)
	}
	resp, b = h.doAs("bob", "bob-password", "GET", "/api/v1/uploads/"+up.ID, nil)
	wantError(t, resp, b, 404, "not_found")
	if resp, b := h.do("PUT", "/api/v1/uploads/"+up.ID+"/chunks/1", bytes.NewReader(data[chunk:2*chunk])); resp.StatusCode != 200 {
		t.Fatalf("chunk 1: %d %s", resp.StatusCode, b)
	}
	n := decode[nodeJSON](t, mustDo(h, 201, "POST", "/api/v1/uploads/"+up.ID+"/finish", ""))
	if n.Size != int64(len(data)) || n.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("node %+v", n)
	}
	resp, got := h.do("GET", "/api/v1/nodes/"+n.ID+"/content", nil, "Range", fmt.Sprintf("bytes=%d-%d", chunk-3, chunk+2))
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(got, data[chunk-3:chunk+3]) {
		t.Fatalf("range across the chunk boundary: %d", resp.StatusCode)
	}
	resp, b = h.do("POST", "/api/v1/uploads", strings.NewReader(`{"parent_id":"`+h.root+`","name":"x"}`))
	wantError(t, resp, b, 400, "invalid_request")
}

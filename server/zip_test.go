package server_test

import (
	"archive/zip"
	"bytes"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
)

func readZip(t *testing.T, b []byte) map[string]string {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("not a zip archive: %v", err)
	}
	out := map[string]string{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(rc)
		rc.Close()
		out[f.Name] = string(data)
	}
	return out
}

func keys(m map[string]string) string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	sort.Strings(k)
	return strings.Join(k, " ")
}

func TestZipDownloads(t *testing.T) {
	h := newHarness(t)
	resp, b := h.do("POST", "/api/v1/nodes/"+h.root+"/children", strings.NewReader(`{"name":"Reports"}`))
	dir := decode[nodeJSON](t, b)
	h.do("POST", "/api/v1/nodes/"+dir.ID+"/children", strings.NewReader(`{"name":"empty"}`))
	a := h.upload(dir.ID, "a.txt", "alpha")
	h.upload(dir.ID, "photo.jpg", "not really a jpeg")
	other := h.upload(h.root, "a.txt", "top-level a")

	resp, b = h.do("GET", "/api/v1/nodes/"+dir.ID+"/zip", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/zip" ||
		!strings.Contains(resp.Header.Get("Content-Disposition"), `filename=Reports.zip`) {
		t.Fatalf("folder zip: %d %v", resp.StatusCode, resp.Header)
	}
	got := readZip(t, b)
	if keys(got) != "Reports/ Reports/a.txt Reports/empty/ Reports/photo.jpg" || got["Reports/a.txt"] != "alpha" {
		t.Errorf("folder zip holds %q", keys(got))
	}

	// The space's top folder: contents at the top of the archive.
	resp, b = h.do("GET", "/api/v1/nodes/"+h.root+"/zip", nil)
	if got := readZip(t, b); keys(got) != "Reports/ Reports/a.txt Reports/empty/ Reports/photo.jpg a.txt" {
		t.Errorf("root zip holds %q", keys(got))
	}

	// A selection with two items of the same name.
	resp, b = h.do("GET", "/api/v1/zip?name=sel&ids="+a.ID+","+other.ID, nil)
	got = readZip(t, b)
	if resp.StatusCode != 200 || keys(got) != "a (2).txt a.txt" || !strings.Contains(resp.Header.Get("Content-Disposition"), "sel.zip") {
		t.Errorf("selection zip: %d %q", resp.StatusCode, keys(got))
	}
	resp, b = h.do("POST", "/api/v1/zip", strings.NewReader(`{"ids":["`+dir.ID+`"]}`), "Content-Type", "application/json")
	if got := readZip(t, b); resp.StatusCode != 200 || len(got) != 4 {
		t.Errorf("POST zip: %d %q", resp.StatusCode, keys(got))
	}

	// Only what the caller may read: bob gets 404 for alice's nodes.
	resp, b = h.doAs("bob", "bob-password", "GET", "/api/v1/nodes/"+dir.ID+"/zip", nil)
	wantError(t, resp, b, http.StatusNotFound, "not_found")
	resp, b = h.doAs("bob", "bob-password", "GET", "/api/v1/zip?ids="+a.ID, nil)
	wantError(t, resp, b, http.StatusNotFound, "not_found")
	resp, b = h.do("GET", "/api/v1/zip", nil)
	wantError(t, resp, b, http.StatusBadRequest, "invalid_request")
}

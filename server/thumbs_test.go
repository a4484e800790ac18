package server_test

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestThumbnails(t *testing.T) {
	h := newHarness(t)
	src := image.NewRGBA(image.Rect(0, 0, 800, 400))
	for y := 0; y < 400; y++ {
		for x := 0; x < 800; x++ {
			src.Set(x, y, color.RGBA{uint8(x), uint8(y), 200, 255})
		}
	}
	var jb, pb bytes.Buffer
	jpeg.Encode(&jb, src, nil)
	png.Encode(&pb, src)
	upload := func(name string, b []byte) nodeJSON {
		resp, body := h.do("POST", "/api/v1/nodes/"+h.root+"/files?name="+url.QueryEscape(name), bytes.NewReader(b))
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("upload %s: %d %s", name, resp.StatusCode, body)
		}
		return decode[nodeJSON](t, body)
	}
	for _, tc := range []struct {
		name  string
		data  []byte
		ctype string
	}{
		{"photo.jpg", jb.Bytes(), "image/jpeg"},
		{"chart.png", pb.Bytes(), "image/png"},
	} {
		n := upload(tc.name, tc.data)
		resp, b := h.do("GET", "/api/v1/nodes/"+n.ID+"/thumbnail?size=100&v="+n.ETag, nil)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != tc.ctype ||
			!strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
			t.Fatalf("%s thumbnail: %d %v %s", tc.name, resp.StatusCode, resp.Header, b)
		}
		img, _, err := image.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s thumbnail does not decode: %v", tc.name, err)
		}
		if got := img.Bounds().Size(); got != (image.Point{100, 50}) {
			t.Errorf("%s thumbnail is %v, want 100x50", tc.name, got)
		}
		// Cached, and conditional requests work.
		resp, _ = h.do("GET", "/api/v1/nodes/"+n.ID+"/thumbnail?size=100", nil, "If-None-Match", resp.Header.Get("ETag"))
		if resp.StatusCode != http.StatusNotModified {
			t.Errorf("%s conditional thumbnail: %d, want 304", tc.name, resp.StatusCode)
		}
	}
	txt := upload("notes.txt", []byte("not an image"))
	resp, b := h.do("GET", "/api/v1/nodes/"+txt.ID+"/thumbnail", nil)
	wantError(t, resp, b, http.StatusUnsupportedMediaType, "no_thumbnail")
	fake := upload("fake.png", []byte("\x89PNG\r\n\x1a\nbroken"))
	resp, b = h.do("GET", "/api/v1/nodes/"+fake.ID+"/thumbnail", nil)
	wantError(t, resp, b, http.StatusUnsupportedMediaType, "no_thumbnail")
	resp, b = h.doAs("bob", "bob-password", "GET", "/api/v1/nodes/"+txt.ID+"/thumbnail", nil)
	wantError(t, resp, b, http.StatusNotFound, "not_found")
	resp, b = h.do("GET", "/api/v1/nodes/"+txt.ID+"/thumbnail?size=5", nil)
	wantError(t, resp, b, http.StatusBadRequest, "invalid_request")
}

package server

import (
	"bytes"
	"container/list"
	"context"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/mux"
)

// Thumbnails are generated on demand from JPEG, PNG and GIF files, bounded
// in input size, pixel count, time and concurrency, and kept in a small
// in-memory LRU cache keyed by the file's ETag, so a new version gets a new
// thumbnail and an old one simply ages out.

const (
	thumbMaxInput  = 40 << 20 // bytes of source image read at most
	thumbMaxPixels = 40e6     // source images above this are not decoded
	thumbTimeout   = 10 * time.Second
	thumbCacheSize = 64 << 20 // bytes of thumbnails kept
)

// thumbSlots bounds concurrent decodes in the process: decoding is CPU-
// and memory-heavy and cannot be interrupted, so the bound is per machine,
// not per Server.
var thumbSlots = make(chan struct{}, 2)

func (s *Server) registerThumbs(authed authedRouter) {
	authed.HandleFunc("/nodes/{id}/thumbnail", s.handleThumbnail).Methods(http.MethodGet, http.MethodHead)
}

func (s *Server) handleThumbnail(w http.ResponseWriter, r *http.Request) {
	size := 256
	if v := r.URL.Query().Get("size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 16 || n > 1024 {
			s.error(w, r, badRequest("size must be a number of pixels from 16 to 1024."))
			return
		}
		size = n
	}
	n, obj, err := s.Files.Open(r.Context(), UserFrom(r), mux.Vars(r)["id"])
	if err != nil {
		s.error(w, r, err)
		return
	}
	defer obj.Close()
	switch n.ContentType {
	case "image/jpeg", "image/png", "image/gif":
	default:
		writeError(w, http.StatusUnsupportedMediaType, "no_thumbnail", "There is no thumbnail for this kind of file.")
		return
	}
	if n.Size > thumbMaxInput {
		writeError(w, http.StatusUnsupportedMediaType, "no_thumbnail", "The image is too large for a thumbnail.")
		return
	}
	key := n.ETag + "/" + strconv.Itoa(size)
	etag := `"t-` + key + `"`
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("X-Content-Type-Options", "nosniff")
	// The UI asks with ?v=<etag>: such a URL always means the same bytes.
	if r.URL.Query().Get("v") == n.ETag {
		h.Set("Cache-Control", "private, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "private, no-cache")
	}
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	t, ok := thumbCache().get(key)
	if !ok {
		t, err = makeThumb(r.Context(), io.LimitReader(readSeeker{ctx: r.Context(), obj: obj}, thumbMaxInput), size)
		if err != nil {
			if r.Context().Err() != nil {
				return
			}
			writeError(w, http.StatusUnsupportedMediaType, "no_thumbnail", "No thumbnail: "+err.Error())
			return
		}
		thumbCache().put(key, t)
	}
	h.Set("Content-Type", t.ctype)
	h.Set("Content-Length", strconv.Itoa(len(t.data)))
	if r.Method != http.MethodHead {
		w.Write(t.data)
	}
}

type thumb struct {
	ctype string
	data  []byte
}

var errThumbBusy = errors.New("the server is busy making other thumbnails")

// makeThumb decodes an image and scales it to fit size×size.
func makeThumb(ctx context.Context, src io.Reader, size int) (thumb, error) {
	ctx, cancel := context.WithTimeout(ctx, thumbTimeout)
	defer cancel()
	select {
	case thumbSlots <- struct{}{}:
	case <-ctx.Done():
		return thumb{}, errThumbBusy
	}
	defer func() { <-thumbSlots }()

	raw, err := io.ReadAll(src)
	if err != nil {
		return thumb{}, err
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(raw))
	if err != nil {
		return thumb{}, errors.New("the image cannot be read")
	}
	if float64(cfg.Width)*float64(cfg.Height) > thumbMaxPixels {
		return thumb{}, errors.New("the image has too many pixels")
	}
	var img image.Image
	switch format {
	case "jpeg":
		img, err = jpeg.Decode(bytes.NewReader(raw))
	case "png":
		img, err = png.Decode(bytes.NewReader(raw))
	case "gif":
		img, err = gif.Decode(bytes.NewReader(raw)) // the first frame
	default:
		err = errors.New("unsupported image format")
	}
	if err != nil {
		return thumb{}, errors.New("the image cannot be read")
	}
	if ctx.Err() != nil {
		return thumb{}, ctx.Err()
	}
	small := scaleToFit(img, size)
	var out bytes.Buffer
	if format == "jpeg" {
		err = jpeg.Encode(&out, small, &jpeg.Options{Quality: 82})
		return thumb{ctype: "image/jpeg", data: out.Bytes()}, err
	}
	err = (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&out, small)
	return thumb{ctype: "image/png", data: out.Bytes()}, err
}

// scaleToFit shrinks img to fit within size×size, keeping its aspect ratio,
// averaging up to 4×4 source samples per destination pixel (a sampled box
// filter: cost bounded by the output size, not the input size).
func scaleToFit(img image.Image, size int) image.Image {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= 0 || h <= 0 {
		return image.NewNRGBA(image.Rect(0, 0, 1, 1))
	}
	scale := min(float64(size)/float64(w), float64(size)/float64(h), 1)
	dw, dh := max(1, int(float64(w)*scale+0.5)), max(1, int(float64(h)*scale+0.5))
	dst := image.NewNRGBA(image.Rect(0, 0, dw, dh))
	fx, fy := float64(w)/float64(dw), float64(h)/float64(dh)
	const taps = 4
	for y := 0; y < dh; y++ {
		for x := 0; x < dw; x++ {
			var r, g, bl, a, n uint64
			for j := 0; j < taps; j++ {
				sy := b.Min.Y + int((float64(y)+(float64(j)+0.5)/taps)*fy)
				for i := 0; i < taps; i++ {
					sx := b.Min.X + int((float64(x)+(float64(i)+0.5)/taps)*fx)
					cr, cg, cb, ca := img.At(sx, sy).RGBA()
					r, g, bl, a, n = r+uint64(cr), g+uint64(cg), bl+uint64(cb), a+uint64(ca), n+1
				}
			}
			// Premultiplied sums back to non-premultiplied 8-bit.
			c := color.NRGBA64Model.Convert(color.RGBA64{uint16(r / n), uint16(g / n), uint16(bl / n), uint16(a / n)}).(color.NRGBA64)
			dst.SetNRGBA(x, y, color.NRGBA{uint8(c.R >> 8), uint8(c.G >> 8), uint8(c.B >> 8), uint8(c.A >> 8)})
		}
	}
	return dst
}

// thumbLRU is a byte-bounded LRU cache of thumbnails.
type thumbLRU struct {
	mu    sync.Mutex
	max   int
	bytes int
	ll    *list.List
	items map[string]*list.Element
}

type thumbEntry struct {
	key string
	t   thumb
}

var (
	thumbsOnce sync.Once
	thumbs     *thumbLRU
)

// thumbCache is shared by all servers in the process, so that its memory
// bound holds per process; keys are content ETags, so sharing is harmless.
func thumbCache() *thumbLRU {
	thumbsOnce.Do(func() {
		thumbs = &thumbLRU{max: thumbCacheSize, ll: list.New(), items: map[string]*list.Element{}}
	})
	return thumbs
}

func (c *thumbLRU) get(key string) (thumb, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[key]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*thumbEntry).t, true
	}
	return thumb{}, false
}

func (c *thumbLRU) put(key string, t thumb) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[key]; ok || len(t.data) > c.max/8 {
		return
	}
	c.items[key] = c.ll.PushFront(&thumbEntry{key, t})
	c.bytes += len(t.data)
	for c.bytes > c.max {
		e := c.ll.Back()
		c.ll.Remove(e)
		te := e.Value.(*thumbEntry)
		delete(c.items, te.key)
		c.bytes -= len(te.t.data)
	}
}

package dav

import (
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"strings"
)

var errChecksum = errors.New("the content does not match the OC-Checksum header")

// checksumBody applies an OC-Checksum header ("SHA1:hex", the type the
// capabilities ask for). SHA256 is checked by the file service itself, so
// it is returned for UploadRequest.SHA256. For SHA1 and MD5 the body is
// wrapped so that a mismatch surfaces as a read error at the end of the
// body, before the file service commits anything. Other types are ignored.
func checksumBody(body io.Reader, header string) (io.Reader, string) {
	typ, sum, ok := strings.Cut(strings.TrimSpace(header), ":")
	if !ok {
		return body, ""
	}
	var h hash.Hash
	switch strings.ToUpper(typ) {
	case "SHA256":
		return body, sum
	case "SHA1":
		h = sha1.New()
	case "MD5":
		h = md5.New()
	default:
		return body, ""
	}
	want, err := hex.DecodeString(strings.TrimSpace(sum))
	if err != nil || len(want) != h.Size() {
		return &checksumReader{r: body, h: h, bad: true}, ""
	}
	return &checksumReader{r: body, h: h, want: want}, ""
}

type checksumReader struct {
	r    io.Reader
	h    hash.Hash
	want []byte
	bad  bool
}

func (c *checksumReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	if err == io.EOF && (c.bad || string(c.h.Sum(nil)) != string(c.want)) {
		return n, errChecksum
	}
	return n, err
}

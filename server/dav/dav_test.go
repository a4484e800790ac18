package dav

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

const propfindOC = `<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:resourcetype/><d:getlastmodified/>` +
	`<d:getcontentlength/><d:getetag/><id xmlns="http://owncloud.org/ns"/><downloadURL xmlns="http://owncloud.org/ns"/>` +
	`<permissions xmlns="http://owncloud.org/ns"/><checksums xmlns="http://owncloud.org/ns"/><size xmlns="http://owncloud.org/ns"/>` +
	`</d:prop>M</d:propfind>`

// propfind returns the properties of one href from a Depth 0 PROPFIND.
func (e *env) propfind0(path string) map[string]msProp {
	e.t.Helper()
	_, body := e.must(207, "PROPFIND", path, propfindOC, "Depth", "0")
	hrefs, props := parseMultistatus(e.t, body)
	if len(hrefs) != 1 {
		e.t.Fatalf("PROPFIND %s: got %d responses, want 1", path, len(hrefs))
	}
	return props[hrefs[0]]
}

func TestAuthAndStatus(t *testing.T) {
	e := newEnv(t)
	resp, _ := e.doAs("", "PROPFIND", aliceRoot+"/", "", "Depth", "0")
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Basic realm="Velox"` {
		t.Errorf("no credentials: got %d %q, want 401 with a Basic challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	resp, body := e.doAs("", "GET", "/status.php", "")
	var st map[string]any
	if err := json.Unmarshal([]byte(body), &st); err != nil || resp.StatusCode != 200 || st["installed"] != true {
		t.Errorf("status.php: got %d %s", resp.StatusCode, body)
	}
	if st["version"] == "" {
		t.Errorf("status.php: no version in %s", body)
	}
}

func TestOCS(t *testing.T) {
	e := newEnv(t)
	for _, v := range []struct {
		path string
		code float64
	}{{"/ocs/v1.php", 100}, {"/ocs/v2.php", 200}} {
		resp, body := e.must(200, "GET", v.path+"/cloud/capabilities?format=json", "", "OCS-APIREQUEST", "true")
		if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
			t.Errorf("%s capabilities: Content-Type %q", v.path, ct)
		}
		var caps struct {
			OCS struct {
				Meta struct{ StatusCode float64 } `json:"meta"`
				Data struct {
					Capabilities map[string]map[string]any `json:"capabilities"`
				} `json:"data"`
			} `json:"ocs"`
		}
		if err := json.Unmarshal([]byte(body), &caps); err != nil {
			t.Fatal(err)
		}
		c := caps.OCS.Data.Capabilities
		if caps.OCS.Meta.StatusCode != v.code {
			t.Errorf("%s: statuscode %v, want %v", v.path, caps.OCS.Meta.StatusCode, v.code)
		}
		if c["files"]["bigfilechunking"] != false || c["dav"] != nil {
			t.Errorf("%s: chunking must be off and dav absent: %s", v.path, body)
		}
		status, _ := c["core"]["status"].(map[string]any)
		if status["version"] == nil {
			t.Errorf("%s: no core.status.version", v.path)
		}
		_, body = e.must(200, "GET", v.path+"/cloud/user?format=json", "")
		var user struct {
			OCS struct {
				Data map[string]string `json:"data"`
			} `json:"ocs"`
		}
		if err := json.Unmarshal([]byte(body), &user); err != nil {
			t.Fatal(err)
		}
		if user.OCS.Data["id"] != "alice" || user.OCS.Data["display-name"] != "Alice" {
			t.Errorf("%s cloud/user: got %s", v.path, body)
		}
	}
	resp, body := e.do("GET", "/ocs/v2.php/cloud/capabilities", "")
	if resp.StatusCode != 200 || !strings.Contains(body, "<bigfilechunking></bigfilechunking>") {
		t.Errorf("XML capabilities: got %d %s", resp.StatusCode, body)
	}
}

func TestOptions(t *testing.T) {
	e := newEnv(t)
	resp, _ := e.must(200, "OPTIONS", aliceRoot+"/", "")
	if resp.Header.Get("DAV") != "1, 2" || !strings.Contains(resp.Header.Get("Allow"), "PROPFIND") {
		t.Errorf("OPTIONS: DAV %q Allow %q", resp.Header.Get("DAV"), resp.Header.Get("Allow"))
	}
}

func TestPutGetPropfindETags(t *testing.T) {
	e := newEnv(t)
	resp, _ := e.must(201, "PUT", aliceRoot+"/a%20b.txt", "hello", "X-OC-Mtime", "1678182000")
	etag := resp.Header.Get("ETag")
	if etag == "" || resp.Header.Get("OC-ETag") != etag || resp.Header.Get("OC-FileId") == "" {
		t.Fatalf("PUT headers: %v", resp.Header)
	}
	if resp.Header.Get("X-OC-Mtime") != "accepted" {
		t.Errorf("X-OC-Mtime: got %q", resp.Header.Get("X-OC-Mtime"))
	}
	p := e.propfind0(aliceRoot + "/a%20b.txt")
	if p["getetag"].value != etag {
		t.Errorf("PROPFIND getetag %q, PUT ETag %q", p["getetag"].value, etag)
	}
	if p["id"].value != resp.Header.Get("OC-FileId") {
		t.Errorf("oc:id %q, OC-FileId %q", p["id"].value, resp.Header.Get("OC-FileId"))
	}
	if p["getlastmodified"].value != "Tue, 07 Mar 2023 09:40:00 GMT" {
		t.Errorf("getlastmodified %q", p["getlastmodified"].value)
	}
	if p["getcontentlength"].value != "5" || p["permissions"].value != "RDNVW" || p["size"].value != "5" {
		t.Errorf("props %+v", p)
	}
	if !strings.Contains(p["checksums"].value, "SHA256:2cf24dba") {
		t.Errorf("checksums %q", p["checksums"].value)
	}
	if !strings.HasPrefix(p["downloadURL"].status, "HTTP/1.1 404") {
		t.Errorf("unknown property: got %+v, want a 404 propstat", p["downloadURL"])
	}

	resp, body := e.must(200, "GET", aliceRoot+"/a%20b.txt", "")
	if body != "hello" || resp.Header.Get("ETag") != etag || resp.Header.Get("Last-Modified") != "Tue, 07 Mar 2023 09:40:00 GMT" {
		t.Errorf("GET: %q %v", body, resp.Header)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("GET Content-Type %q", ct)
	}
	e.must(304, "GET", aliceRoot+"/a%20b.txt", "", "If-None-Match", etag)
	e.must(304, "GET", aliceRoot+"/a%20b.txt", "", "If-Modified-Since", "Tue, 07 Mar 2023 09:40:00 GMT")
	_, body = e.must(206, "GET", aliceRoot+"/a%20b.txt", "", "Range", "bytes=1-3")
	if body != "ell" {
		t.Errorf("Range: got %q", body)
	}
	resp, body = e.must(200, "HEAD", aliceRoot+"/a%20b.txt", "")
	if body != "" || resp.ContentLength != 5 {
		t.Errorf("HEAD: %q length %d", body, resp.ContentLength)
	}

	// Replace: 204, new ETag, same ID.
	resp, _ = e.must(204, "PUT", aliceRoot+"/a%20b.txt", "hello again")
	if resp.Header.Get("ETag") == etag || resp.Header.Get("OC-FileId") != p["id"].value {
		t.Errorf("replace: ETag %q (old %q), id %q", resp.Header.Get("ETag"), etag, resp.Header.Get("OC-FileId"))
	}
	if got := e.propfind0(aliceRoot + "/a%20b.txt")["getetag"].value; got != resp.Header.Get("ETag") {
		t.Errorf("after replace: PROPFIND getetag %q, PUT ETag %q", got, resp.Header.Get("ETag"))
	}

	// Empty file.
	e.must(201, "PUT", aliceRoot+"/empty", "")
	if p := e.propfind0(aliceRoot + "/empty"); p["getcontentlength"].value != "0" {
		t.Errorf("empty file: getcontentlength %+v", p["getcontentlength"])
	}
}

func TestPutConditionsAndErrors(t *testing.T) {
	e := newEnv(t)
	resp, _ := e.must(201, "PUT", aliceRoot+"/f", "1")
	etag := resp.Header.Get("ETag")
	e.must(412, "PUT", aliceRoot+"/f", "2", "If-None-Match", "*")
	e.must(412, "PUT", aliceRoot+"/f", "2", "If-Match", `"nope"`)
	e.must(412, "PUT", aliceRoot+"/missing", "2", "If-Match", "*")
	e.must(204, "PUT", aliceRoot+"/f", "2", "If-Match", etag)
	e.must(201, "PUT", aliceRoot+"/g", "2", "If-None-Match", "*")
	e.must(409, "PUT", aliceRoot+"/no/such/parent", "x")
	e.must(409, "PUT", aliceRoot+"/f/under-a-file", "x")
	e.must(201, "MKCOL", aliceRoot+"/dir", "")
	e.must(405, "PUT", aliceRoot+"/dir", "x")
	e.must(400, "PUT", aliceRoot+"/f", "x", "Content-Range", "bytes 0-0/1")
	// A legacy chunk without the whole file's size (chunked_test.go
	// covers chunked uploads).
	e.must(400, "PUT", aliceRoot+"/f-chunking-1-2-0", "x", "OC-Chunked", "1")
	// SHA1 of "abc" is a9993e36...; a wrong checksum stores nothing.
	e.must(201, "PUT", aliceRoot+"/sum", "abc", "OC-Checksum", "SHA1:a9993e364706816aba3e25717850c26c9cd0d89d")
	e.must(400, "PUT", aliceRoot+"/sum2", "abc", "OC-Checksum", "SHA1:0000000000000000000000000000000000000000")
	if _, err := e.node("/sum2"); err == nil {
		t.Errorf("a PUT with a wrong checksum created the file")
	}
}

// TestPutCutOff sends fewer bytes than Content-Length and hangs up: nothing
// may become visible.
func TestPutCutOff(t *testing.T) {
	e := newEnv(t)
	conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "PUT %s/partial.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWxpY2U6YWxpY2UtcGFzcw==\r\n"+
		"Content-Length: 100000\r\n\r\n%s", aliceRoot, strings.Repeat("x", 1000))
	time.Sleep(100 * time.Millisecond)
	conn.Close()
	// The server notices the hang-up asynchronously; give it a moment.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		_, body := e.must(207, "PROPFIND", aliceRoot+"/", "", "Depth", "1")
		if strings.Contains(body, "partial.bin") {
			t.Fatalf("a cut-off PUT is visible:\n%s", body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := e.node("/partial.bin"); err == nil {
		t.Errorf("a cut-off PUT created the file")
	}
}

func TestMkcolDelete(t *testing.T) {
	e := newEnv(t)
	resp, _ := e.must(201, "MKCOL", aliceRoot+"/d", "")
	if resp.Header.Get("OC-FileId") == "" {
		t.Errorf("MKCOL: no OC-FileId")
	}
	e.must(405, "MKCOL", aliceRoot+"/d", "")
	e.must(405, "MKCOL", aliceRoot+"/d/", "")
	e.must(409, "MKCOL", aliceRoot+"/x/y", "")
	e.must(415, "MKCOL", aliceRoot+"/e", "<mkcol/>")
	e.must(201, "PUT", aliceRoot+"/d/f", "x")
	e.must(204, "DELETE", aliceRoot+"/d/", "")
	e.must(404, "DELETE", aliceRoot+"/d", "")
	e.must(404, "PROPFIND", aliceRoot+"/d/f", "", "Depth", "0")
	e.must(403, "DELETE", aliceRoot+"/", "")
}

func TestPropfindShape(t *testing.T) {
	e := newEnv(t)
	e.must(201, "MKCOL", aliceRoot+"/sub%20dir", "")
	e.must(201, "PUT", aliceRoot+"/sub%20dir/%C3%A9t%C3%A9.txt", "x")
	e.must(201, "PUT", aliceRoot+"/top", "x")

	for _, depth := range []string{"infinity", ""} {
		var hdr []string
		if depth != "" {
			hdr = []string{"Depth", depth}
		}
		resp, body := e.do("PROPFIND", aliceRoot+"/", "", hdr...)
		if resp.StatusCode != 403 || !strings.Contains(body, "propfind-finite-depth") {
			t.Errorf("Depth %q: got %d %s", depth, resp.StatusCode, body)
		}
	}

	resp, body := e.must(207, "PROPFIND", aliceRoot+"/", propfindOC, "Depth", "1")
	if ct := resp.Header.Get("Content-Type"); ct != "application/xml; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	hrefs, props := parseMultistatus(t, body)
	want := []string{aliceRoot + "/", aliceRoot + "/sub%20dir/", aliceRoot + "/top"}
	if strings.Join(hrefs, " ") != strings.Join(want, " ") {
		t.Errorf("hrefs: got %v, want %v", hrefs, want)
	}
	for _, h := range hrefs {
		p := props[h]
		if p["getetag"].value == "" || p["id"].value == "" || p["permissions"].value == "" {
			t.Errorf("%s: missing etag, id or permissions: %+v", h, p)
		}
	}
	dir := props[aliceRoot+"/sub%20dir/"]
	if dir["permissions"].value != "RDNVCK" || !strings.Contains(dir["resourcetype"].value, "collection") || dir["size"].value != "1" {
		t.Errorf("folder props: %+v", dir)
	}

	// The legacy root lists the same tree with its own hrefs.
	_, body = e.must(207, "PROPFIND", "/remote.php/webdav/sub%20dir", "", "Depth", "1")
	hrefs, _ = parseMultistatus(t, body)
	if len(hrefs) != 2 || hrefs[0] != "/remote.php/webdav/sub%20dir/" || hrefs[1] != "/remote.php/webdav/sub%20dir/%C3%A9t%C3%A9.txt" {
		t.Errorf("webdav hrefs: %v", hrefs)
	}

	e.must(404, "PROPFIND", aliceRoot+"/nope", "", "Depth", "0")
	resp, _ = e.do("PROPFIND", aliceRoot+"/", `<propfind xmlns="DAV:"><prop><bar:foo xmlns:bar=""/></prop></propfind>`, "Depth", "0")
	if resp.StatusCode != 400 {
		t.Errorf("empty namespace prefix: got %d, want 400", resp.StatusCode)
	}
	big := `<propfind xmlns="DAV:"><prop>` + strings.Repeat("<x/>", maxXMLBody/4) + `</prop></propfind>`
	resp, _ = e.do("PROPFIND", aliceRoot+"/", big, "Depth", "0")
	if resp.StatusCode != 413 {
		t.Errorf("huge body: got %d, want 413", resp.StatusCode)
	}
	// allprop lists dead properties too.
	e.must(207, "PROPPATCH", aliceRoot+"/top", `<d:propertyupdate xmlns:d="DAV:"><d:set><d:prop><z:color xmlns:z="urn:z">blue</z:color></d:prop></d:set></d:propertyupdate>`)
	_, body = e.must(207, "PROPFIND", aliceRoot+"/", `<propfind xmlns="DAV:"><allprop/></propfind>`, "Depth", "1")
	_, props = parseMultistatus(t, body)
	if props[aliceRoot+"/top"]["color"].value != "blue" {
		t.Errorf("allprop: no dead property in %s", body)
	}
}

func TestFolderETagsPropagate(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/a", "/a/b", "/a/b/c", "/other"} {
		e.must(201, "MKCOL", aliceRoot+p, "")
	}
	e.must(201, "PUT", aliceRoot+"/a/b/c/f", "1")
	paths := []string{"/", "/a", "/a/b", "/a/b/c"}
	before := map[string]string{}
	for _, p := range append(paths, "/other") {
		before[p] = e.propfind0(aliceRoot + p)["getetag"].value
	}
	e.must(204, "PUT", aliceRoot+"/a/b/c/f", "22")
	for _, p := range paths {
		if got := e.propfind0(aliceRoot + p)["getetag"].value; got == before[p] || got == "" {
			t.Errorf("%s: ETag %q did not change after a change below it", p, got)
		}
	}
	if got := e.propfind0(aliceRoot + "/other")["getetag"].value; got != before["/other"] {
		t.Errorf("/other: ETag changed from %q to %q though nothing below it did", before["/other"], got)
	}
	if got := e.propfind0(aliceRoot + "/a")["size"].value; got != "2" {
		t.Errorf("/a: oc:size %q, want 2", got)
	}
}

func TestMoveCopy(t *testing.T) {
	e := newEnv(t)
	dest := func(p string) string { return e.srv.URL + aliceRoot + p }
	e.must(201, "MKCOL", aliceRoot+"/d", "")
	e.must(201, "PUT", aliceRoot+"/d/f", "data")
	id := e.propfind0(aliceRoot + "/d/f")["id"].value
	etag := e.propfind0(aliceRoot + "/d/f")["getetag"].value

	// Absolute-URL destination (rclone, litmus).
	resp, _ := e.must(201, "MOVE", aliceRoot+"/d/f", "", "Destination", dest("/g"))
	if resp.Header.Get("OC-FileId") != id {
		t.Errorf("MOVE: OC-FileId %q, want %q", resp.Header.Get("OC-FileId"), id)
	}
	p := e.propfind0(aliceRoot + "/g")
	if p["id"].value != id || p["getetag"].value != etag {
		t.Errorf("after MOVE: id %q etag %q, want %q %q", p["id"].value, p["getetag"].value, id, etag)
	}
	// Path-only destination (ownCloud/Nextcloud clients), into a folder.
	e.must(201, "MOVE", aliceRoot+"/g", "", "Destination", aliceRoot+"/d/f%20moved")
	if got := e.propfind0(aliceRoot + "/d/f%20moved")["id"].value; got != id {
		t.Errorf("after second MOVE: id %q, want %q", got, id)
	}
	// The legacy root is the same tree.
	e.must(201, "COPY", aliceRoot+"/d/f%20moved", "", "Destination", "/remote.php/webdav/c")
	if got := e.propfind0(aliceRoot + "/c")["id"].value; got == id || got == "" {
		t.Errorf("COPY: id %q must be new (source %q)", got, id)
	}
	e.must(412, "COPY", aliceRoot+"/d/f%20moved", "", "Destination", dest("/c"), "Overwrite", "F")
	e.must(204, "COPY", aliceRoot+"/d/f%20moved", "", "Destination", dest("/c"), "Overwrite", "T")
	e.must(409, "COPY", aliceRoot+"/c", "", "Destination", dest("/no/parent"))
	e.must(403, "MOVE", aliceRoot+"/c", "", "Destination", dest("/c"))
	e.must(403, "MOVE", aliceRoot+"/c", "", "Destination", e.srv.URL+"/remote.php/dav/files/bob/c")
	e.must(502, "MOVE", aliceRoot+"/c", "", "Destination", "http://elsewhere.example"+aliceRoot+"/x")
	// Behind a reverse proxy the URL carries the public host.
	e.must(201, "COPY", aliceRoot+"/c", "", "Destination", "https://files.example"+aliceRoot+"/via-proxy",
		"X-Forwarded-Host", "files.example")
	e.must(404, "MOVE", aliceRoot+"/nope", "", "Destination", dest("/x"))
	e.must(400, "MOVE", aliceRoot+"/c", "", "Destination", dest("/x"), "Depth", "0")

	// Depth 0 copies a folder without its members.
	e.must(201, "COPY", aliceRoot+"/d", "", "Destination", dest("/shallow"), "Depth", "0")
	e.must(207, "PROPFIND", aliceRoot+"/shallow", "", "Depth", "0")
	e.must(404, "PROPFIND", aliceRoot+"/shallow/f%20moved", "", "Depth", "0")
	e.must(201, "COPY", aliceRoot+"/d", "", "Destination", dest("/deep"))
	e.must(207, "PROPFIND", aliceRoot+"/deep/f%20moved", "", "Depth", "0")

	// X-OC-Mtime on COPY (rclone) sets the mtime.
	resp, _ = e.must(201, "COPY", aliceRoot+"/c", "", "Destination", dest("/c2"), "X-OC-Mtime", "1000000000")
	if resp.Header.Get("X-OC-Mtime") != "accepted" {
		t.Errorf("COPY X-OC-Mtime: got %q", resp.Header.Get("X-OC-Mtime"))
	}
	if got := e.propfind0(aliceRoot + "/c2")["getlastmodified"].value; got != "Sun, 09 Sep 2001 01:46:40 GMT" {
		t.Errorf("COPY mtime: %q", got)
	}
	// Overwriting a folder by MOVE replaces it.
	e.must(204, "MOVE", aliceRoot+"/deep", "", "Destination", dest("/d"))
	e.must(207, "PROPFIND", aliceRoot+"/d/f%20moved", "", "Depth", "0")
	e.must(404, "PROPFIND", aliceRoot+"/deep", "", "Depth", "0")
}

func TestProppatch(t *testing.T) {
	e := newEnv(t)
	e.must(201, "PUT", aliceRoot+"/f", "x")
	etag := e.propfind0(aliceRoot + "/f")["getetag"].value
	set := `<d:propertyupdate xmlns:d="DAV:" xmlns:z="urn:z"><d:set><d:prop><z:a>1</z:a><d:getetag>x</d:getetag></d:prop></d:set></d:propertyupdate>`
	_, body := e.must(207, "PROPPATCH", aliceRoot+"/f", set)
	_, props := parseMultistatus(t, body)
	p := props[aliceRoot+"/f"]
	if !strings.Contains(p["getetag"].status, "403") || !strings.Contains(p["a"].status, "424") {
		t.Errorf("protected property: %+v", p)
	}
	if got := e.propfind0(aliceRoot + "/f")["getetag"].value; got != etag {
		t.Errorf("getetag changed to %q", got)
	}
	// Nothing was applied.
	_, body = e.must(207, "PROPFIND", aliceRoot+"/f", `<propfind xmlns="DAV:"><prop><a xmlns="urn:z"/></prop></propfind>`, "Depth", "0")
	if _, props = parseMultistatus(t, body); !strings.Contains(props[aliceRoot+"/f"]["a"].status, "404") {
		t.Errorf("a failed PROPPATCH applied a property: %s", body)
	}

	// rclone's mtime update.
	rcl := `<?xml version="1.0" encoding="utf-8" ?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><lastmodified xmlns="DAV:">1000000000</lastmodified></D:prop></D:set>` +
		`<D:set><D:prop><oc:checksums xmlns:oc="http://owncloud.org/ns"><oc:checksum>SHA1:aa</oc:checksum></oc:checksums></D:prop></D:set></D:propertyupdate>`
	_, body = e.must(207, "PROPPATCH", aliceRoot+"/f", rcl)
	_, props = parseMultistatus(t, body)
	for name, pr := range props[aliceRoot+"/f"] {
		if !strings.Contains(pr.status, "200") {
			t.Errorf("rclone PROPPATCH %s: %s", name, pr.status)
		}
	}
	if got := e.propfind0(aliceRoot + "/f")["getlastmodified"].value; got != "Sun, 09 Sep 2001 01:46:40 GMT" {
		t.Errorf("mtime after PROPPATCH: %q", got)
	}
	e.must(400, "PROPPATCH", aliceRoot+"/f", "<nope")
	e.must(404, "PROPPATCH", aliceRoot+"/missing", set)
}

// TestPathTraversal sends paths that try to leave the space or smuggle
// separators. None may reach another tree; all are 400 or 404.
func TestPathTraversal(t *testing.T) {
	e := newEnv(t)
	// bob's file, which alice must never see.
	resp, _ := e.doAs("bob", "PUT", "/remote.php/dav/files/bob/secret", "bob's")
	if resp.StatusCode != 201 {
		t.Fatalf("bob's PUT: %d", resp.StatusCode)
	}
	e.must(201, "MKCOL", aliceRoot+"/d", "")
	long := strings.Repeat("n", 256)
	for _, p := range []string{
		aliceRoot + "/../bob/secret",
		aliceRoot + "/d/../../bob/secret",
		aliceRoot + "/%2e%2e/bob/secret",
		aliceRoot + "/d/%2E%2E/%2e%2e/bob/secret",
		aliceRoot + "/..%2fbob%2fsecret",
		aliceRoot + "/d%2f..%2f..%2fbob%2fsecret",
		aliceRoot + "/..%5cbob%5csecret",
		aliceRoot + "/d\\..\\..\\bob\\secret",
		aliceRoot + "/./d",
		aliceRoot + "/%2e/d",
		aliceRoot + "/a%00b",
		aliceRoot + "/" + long,
		aliceRoot + "/bad%zzescape",
		"/remote.php/webdav/../dav/files/bob/secret",
		"/remote.php/webdav/%2e%2e/dav/files/bob/secret",
		"/remote.php/dav/files/bob/secret",
		"/remote.php/dav/files/bob/",
		"/remote.php/dav/files/%62ob/secret",
		"/remote.php/dav/files/alice%2f..%2fbob/secret",
		"/remote.php/dav/files/",
		"/remote.php/webdavx/secret",
	} {
		for _, m := range []string{"GET", "PROPFIND", "PUT", "MKCOL", "DELETE"} {
			status, body := e.raw(m, p)
			if status != 400 && status != 404 {
				t.Errorf("%s %s: got %d, want 400 or 404; body %s", m, p, status, body)
			}
			if strings.Contains(body, "bob's") {
				t.Errorf("%s %s: leaked bob's file", m, p)
			}
		}
	}
	// bob's file is untouched.
	resp, body := e.doAs("bob", "GET", "/remote.php/dav/files/bob/secret", "")
	if resp.StatusCode != 200 || body != "bob's" {
		t.Errorf("bob's file: %d %q", resp.StatusCode, body)
	}
	// Names: NUL and over-long names are refused; 255 bytes are fine.
	e.must(400, "PUT", aliceRoot+"/nul%00name", "x")
	e.must(400, "MKCOL", aliceRoot+"/"+long, "")
	e.must(201, "PUT", aliceRoot+"/"+long[:255], "x")
	e.must(400, "MOVE", aliceRoot+"/d", "", "Destination", aliceRoot+"/"+long)
}

// raw sends a request with the path exactly as given (no client-side
// escaping or cleaning) as alice.
func (e *env) raw(method, path string) (int, string) {
	e.t.Helper()
	conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWxpY2U6YWxpY2UtcGFzcw==\r\n"+
		"Depth: 0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", method, path)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestOtherUsersTree(t *testing.T) {
	e := newEnv(t)
	if resp, _ := e.doAs("bob", "PUT", "/remote.php/dav/files/bob/secret", "bob's"); resp.StatusCode != 201 {
		t.Fatalf("bob's PUT: %d", resp.StatusCode)
	}
	for _, m := range []string{"GET", "PROPFIND", "DELETE", "PROPPATCH", "MOVE", "COPY"} {
		resp, body := e.do(m, "/remote.php/dav/files/bob/secret", "", "Depth", "0", "Destination", aliceRoot+"/stolen")
		if resp.StatusCode != 404 || strings.Contains(body, "bob's") {
			t.Errorf("%s bob's file as alice: got %d %s, want 404", m, resp.StatusCode, body)
		}
	}
	if _, err := e.node("/stolen"); err == nil {
		t.Errorf("alice copied bob's file")
	}
}

func TestLock(t *testing.T) {
	e := newEnv(t)
	lock := `<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>`
	resp, body := e.must(201, "LOCK", aliceRoot+"/new.txt", lock)
	if !strings.HasPrefix(resp.Header.Get("Lock-Token"), "<opaquelocktoken:") || !strings.Contains(body, "activelock") {
		t.Errorf("LOCK: %v %s", resp.Header, body)
	}
	e.must(200, "LOCK", aliceRoot+"/new.txt", lock)
	e.must(204, "UNLOCK", aliceRoot+"/new.txt", "", "Lock-Token", resp.Header.Get("Lock-Token"))
}

// TestLargeFolderStreams lists a folder with 10,000 entries in one Depth:1
// PROPFIND.
func TestLargeFolderStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	e := newEnv(t)
	e.must(201, "MKCOL", aliceRoot+"/big", "")
	big, err := e.node("/big")
	if err != nil {
		t.Fatal(err)
	}
	const n = 10000
	if err := fillFolder(e, big, n); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("PROPFIND", e.srv.URL+aliceRoot+"/big", strings.NewReader(propfindOC))
	req.SetBasicAuth("alice", "alice-pass")
	req.Header.Set("Depth", "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 207 || resp.ContentLength != -1 {
		t.Fatalf("got %d with Content-Length %d, want a streamed 207", resp.StatusCode, resp.ContentLength)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	hrefs, props := parseMultistatus(t, string(b))
	if len(hrefs) != n+1 {
		t.Fatalf("got %d responses, want %d", len(hrefs), n+1)
	}
	seen := map[string]bool{}
	for _, h := range hrefs[1:] {
		if seen[h] || props[h]["getetag"].value == "" {
			t.Fatalf("%s: duplicate or without etag", h)
		}
		seen[h] = true
	}
}

// TestConcurrentWrites mimics a sync client's parallel uploads into one
// folder: every request succeeds and the listing shows every file.
func TestConcurrentWrites(t *testing.T) {
	e := newEnv(t)
	e.must(201, "MKCOL", aliceRoot+"/p", "")
	before := e.propfind0(aliceRoot + "/p")["getetag"].value
	const n = 12
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func(i int) {
			req, _ := http.NewRequest("PUT", fmt.Sprintf("%s%s/p/f%02d", e.srv.URL, aliceRoot, i), strings.NewReader(strings.Repeat("x", i)))
			req.SetBasicAuth("alice", "alice-pass")
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != 201 {
					err = fmt.Errorf("PUT f%02d: status %d", i, resp.StatusCode)
				}
			}
			errs <- err
		}(i)
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	_, body := e.must(207, "PROPFIND", aliceRoot+"/p", propfindOC, "Depth", "1")
	hrefs, props := parseMultistatus(t, body)
	if len(hrefs) != n+1 {
		t.Errorf("got %d responses, want %d", len(hrefs), n+1)
	}
	if got := props[hrefs[0]]["getetag"].value; got == before {
		t.Errorf("folder ETag unchanged after uploads")
	}
	if got := props[hrefs[0]]["size"].value; got != fmt.Sprint(n*(n-1)/2) {
		t.Errorf("folder size %s, want %d", got, n*(n-1)/2)
	}
}

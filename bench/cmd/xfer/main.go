// Command xfer uploads or downloads one file over HTTP and prints the
// throughput in MB/s (10^6 bytes per second), for the benchmarks in
// bench/.
//
// It exists because curl moves bytes between the socket and the file in
// 16 KiB calls: writing a download into a file, curl tops out near 0.9 GB/s
// here even against a bare sendfile(2) server, so it would measure curl
// rather than the server. xfer sends uploads with sendfile(2) (net/http
// does so for an *os.File body) and writes downloads in 1 MiB calls, the
// way a sync client with sensible buffers does.
//
//	xfer -put FILE [-user U:P] [-method POST] URL   upload FILE as the body
//	xfer -get FILE [-user U:P] URL                  download into FILE
//	xfer -sha256 FILE                               hash FILE (a baseline)
//
// With -print-body, the response body of an upload is written to stdout
// (the API answers with the new node as JSON); the figure then goes to
// stderr.
package main

import (
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	put := flag.String("put", "", "upload this file")
	get := flag.String("get", "", "download into this file (- for /dev/null)")
	user := flag.String("user", "", "basic auth as USER:PASSWORD")
	method := flag.String("method", http.MethodPut, "method of an upload")
	printBody := flag.Bool("print-body", false, "write an upload's response body to stdout")
	hashFile := flag.String("sha256", "", "print how fast SHA-256 of this file runs on one core")
	flag.Parse()
	if *hashFile != "" {
		start := time.Now()
		n, err := hashRate(*hashFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "xfer:", err)
			os.Exit(1)
		}
		fmt.Printf("%.0f\n", float64(n)/time.Since(start).Seconds()/1e6)
		return
	}
	if flag.NArg() != 1 || (*put == "") == (*get == "") {
		fmt.Fprintln(os.Stderr, "usage: xfer -put FILE | -get FILE [-user U:P] URL")
		os.Exit(2)
	}
	url := flag.Arg(0)
	start := time.Now()
	var n int64
	var err error
	if *put != "" {
		n, err = upload(url, *put, *method, *user, *printBody)
	} else {
		n, err = download(url, *get, *user)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "xfer:", err)
		os.Exit(1)
	}
	out := os.Stdout
	if *printBody {
		out = os.Stderr
	}
	fmt.Fprintf(out, "%.0f\n", float64(n)/time.Since(start).Seconds()/1e6)
}

// hashRate hashes a file the way the server hashes an upload: SHA-256,
// one core, 1 MiB reads.
func hashRate(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return io.CopyBuffer(sha256.New(), struct{ io.Reader }{f}, make([]byte, 1<<20))
}

func auth(req *http.Request, user string) {
	if u, p, ok := strings.Cut(user, ":"); ok {
		req.SetBasicAuth(u, p)
	}
}

func upload(url, path, method, user string, printBody bool) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequest(method, url, f)
	if err != nil {
		return 0, err
	}
	req.ContentLength = fi.Size()
	req.Header.Set("Content-Type", "application/octet-stream")
	auth(req, user)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode/100 != 2 {
		return 0, fmt.Errorf("%s: %s", resp.Status, body)
	}
	if printBody {
		os.Stdout.Write(body)
	}
	return fi.Size(), nil
}

func download(url, path, user string) (int64, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	auth(req, user)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return 0, fmt.Errorf("%s: %s", resp.Status, b)
	}
	if path == "-" {
		return io.CopyBuffer(io.Discard, resp.Body, make([]byte, 1<<20))
	}
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	// The struct hides os.File's ReadFrom, which would copy in 32 KiB
	// steps.
	n, err := io.CopyBuffer(struct{ io.Writer }{f}, resp.Body, make([]byte, 1<<20))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return n, err
}

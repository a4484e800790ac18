// Command upstream is the origin server for bench/proxy.sh: /small answers
// a 1 KiB body, /big streams -big bytes generated on the fly, and PUT
// discards the request body and reports its size.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"strconv"
	"strings"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:9001", "address to listen on")
	big := flag.Int64("big", 1<<30, "size of /big in bytes")
	flag.Parse()

	small := []byte(strings.Repeat("v", 1024))
	block := make([]byte, 256<<10)
	for i := range block {
		block[i] = byte(i)
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut || r.Method == http.MethodPost {
			n, err := io.Copy(io.Discard, r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			fmt.Fprintln(w, n)
			return
		}
		switch r.URL.Path {
		case "/big":
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", strconv.FormatInt(*big, 10))
			for left := *big; left > 0; {
				n := min(left, int64(len(block)))
				if _, err := w.Write(block[:n]); err != nil {
					return
				}
				left -= n
			}
		default:
			w.Header().Set("Content-Type", "text/plain")
			w.Write(small)
		}
	})
	log.Fatal(http.ListenAndServe(*addr, nil))
}

// Command idleconns opens -n HTTPS keep-alive connections to -url, sends one
// request on each and then holds them idle until it is terminated (or -hold
// passes), so bench/proxy.sh can measure what idle connections cost a proxy.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	n := flag.Int("n", 1000, "connections")
	rawURL := flag.String("url", "https://127.0.0.1:8443/small", "URL to request once per connection")
	hold := flag.Duration("hold", 10*time.Minute, "how long to hold the connections at most")
	flag.Parse()
	u, err := url.Parse(*rawURL)
	if err != nil {
		log.Fatal(err)
	}
	conns := make([]*tls.Conn, 0, *n)
	for i := range *n {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", u.Host,
			&tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
		if err != nil {
			log.Fatalf("connection %d: %v", i, err)
		}
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", u.RequestURI(), u.Host)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			log.Fatalf("connection %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		conns = append(conns, c)
	}
	fmt.Println("ready", len(conns))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	select {
	case <-ctx.Done():
	case <-time.After(*hold):
	}
	for _, c := range conns {
		c.Close()
	}
}

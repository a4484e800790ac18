package proxy

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/veloxhq/velox/internal/testenv"
)

// swiftAccount authenticates with tempauth (v1) using the environment.
func swiftAccount(t *testing.T) (storageURL, token string) {
	t.Helper()
	authURL := os.Getenv("VELOX_TEST_SWIFT_AUTH_URL")
	user, key := os.Getenv("VELOX_TEST_SWIFT_USER"), os.Getenv("VELOX_TEST_SWIFT_KEY")
	if authURL == "" || user == "" || key == "" {
		testenv.Unavailable(t, "swift", errors.New("VELOX_TEST_SWIFT_AUTH_URL, VELOX_TEST_SWIFT_USER and VELOX_TEST_SWIFT_KEY are not all set"))
	}
	req, _ := http.NewRequest(http.MethodGet, authURL, nil)
	req.Header.Set("X-Auth-User", user)
	req.Header.Set("X-Auth-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		testenv.Unavailable(t, "swift", err)
	}
	resp.Body.Close()
	storageURL, token = resp.Header.Get("X-Storage-Url"), resp.Header.Get("X-Auth-Token")
	if resp.StatusCode/100 != 2 || storageURL == "" || token == "" {
		t.Fatalf("swift auth at %s: status %d, storage URL %q", authURL, resp.StatusCode, storageURL)
	}
	return storageURL, token
}

func swiftDo(t *testing.T, method, u, token string, hdr map[string]string, body []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", token)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: status %d", method, u, resp.StatusCode)
	}
	return resp
}

// TestSwiftTempURLThroughProxy downloads an object from a real Swift
// cluster with a temp URL, through the proxy's /v1/ route.
func TestSwiftTempURLThroughProxy(t *testing.T) {
	storageURL, token := swiftAccount(t)
	su, err := url.Parse(storageURL)
	if err != nil {
		t.Fatal(err)
	}
	key := rand.Text()
	swiftDo(t, http.MethodPost, storageURL, token, map[string]string{"X-Account-Meta-Temp-URL-Key": key}, nil)
	container := "velox-proxy-test-" + rand.Text()[:8]
	object := "dir/blob with space"
	data := make([]byte, 3<<20+17)
	rand.Read(data)
	swiftDo(t, http.MethodPut, storageURL+"/"+container, token, nil, nil)
	objURL := storageURL + "/" + container + "/" + url.PathEscape("dir") + "/" + url.PathEscape("blob with space")
	swiftDo(t, http.MethodPut, objURL, token, nil, data)
	t.Cleanup(func() {
		for _, u := range []string{objURL, storageURL + "/" + container} {
			req, _ := http.NewRequest(http.MethodDelete, u, nil)
			req.Header.Set("X-Auth-Token", token)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}
	})

	tp := startProxy(t, nil, fmt.Sprintf(`
listen: 127.0.0.1:0
upstreams:
  app: {targets: ["http://127.0.0.1:9"]}
  swift:
    targets: ["%s://%s"]
    health_check: {path: /healthcheck, interval: 1s}
routes:
  - {path: /, upstream: app}
  - {path: /v1/, upstream: swift}
`, su.Scheme, su.Host), nil)

	// Swift signs the unescaped path.
	path := su.Path + "/" + container + "/" + object
	expires := strconv.FormatInt(time.Now().Add(10*time.Minute).Unix(), 10)
	mac := hmac.New(sha256.New, []byte(key))
	fmt.Fprintf(mac, "GET\n%s\n%s", expires, path)
	sig := hex.EncodeToString(mac.Sum(nil))
	tempURL := (&url.URL{Path: path, RawQuery: "temp_url_sig=" + sig + "&temp_url_expires=" + expires}).String()

	resp, err := tp.client.Get(tp.url(tempURL))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || !bytes.Equal(got, data) {
		t.Fatalf("temp URL via proxy: status %d, %d bytes (%v); want 200 and the %d bytes stored", resp.StatusCode, len(got), err, len(data))
	}
	// A forged signature is Swift's to refuse, and the refusal comes through.
	resp, err = tp.client.Get(tp.url((&url.URL{Path: path, RawQuery: "temp_url_sig=" + sig[:len(sig)-1] + "0&temp_url_expires=" + expires}).String()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("forged temp URL: got %d, want 401", resp.StatusCode)
	}
}

package dav

import (
	"encoding/xml"
	"strings"
	"testing"
)

// msProp is one property of a parsed multistatus.
type msProp struct {
	status string
	value  string
}

// parseMultistatus returns, per href, the properties by local name.
func parseMultistatus(t *testing.T, body string) (hrefs []string, props map[string]map[string]msProp) {
	t.Helper()
	var ms struct {
		Responses []struct {
			Href      string `xml:"DAV: href"`
			Propstats []struct {
				Status string `xml:"DAV: status"`
				Prop   struct {
					Any []struct {
						XMLName xml.Name
						Inner   string `xml:",innerxml"`
					} `xml:",any"`
				} `xml:"DAV: prop"`
			} `xml:"DAV: propstat"`
		} `xml:"DAV: response"`
	}
	if err := xml.Unmarshal([]byte(body), &ms); err != nil {
		t.Fatalf("bad multistatus: %v\n%s", err, body)
	}
	props = map[string]map[string]msProp{}
	for _, r := range ms.Responses {
		hrefs = append(hrefs, r.Href)
		m := map[string]msProp{}
		for _, ps := range r.Propstats {
			for _, p := range ps.Prop.Any {
				m[p.XMLName.Local] = msProp{status: ps.Status, value: p.Inner}
			}
		}
		props[r.Href] = m
	}
	return hrefs, props
}

func TestParsePropfind(t *testing.T) {
	tests := []struct {
		name, body string
		mode       propfindMode
		names      int
		bad        bool
	}{
		{name: "empty is allprop", body: "", mode: modeAllProp},
		{name: "allprop", body: `<propfind xmlns="DAV:"><allprop/></propfind>`, mode: modeAllProp},
		{name: "propname", body: `<D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>`, mode: modePropName},
		// ownCloud's client sends a stray "M" text node.
		{name: "owncloud", body: `<d:propfind xmlns:d="DAV:"><d:prop><d:getetag/><id xmlns="http://owncloud.org/ns"/></d:prop>M</d:propfind>`, mode: modeProp, names: 2},
		{name: "include", body: `<propfind xmlns="DAV:"><allprop/><include><quota-used-bytes/></include></propfind>`, mode: modeAllProp, names: 1},
		{name: "empty prefix binding", body: `<propfind xmlns="DAV:"><prop><bar:foo xmlns:bar=""/></prop></propfind>`, bad: true},
		{name: "not well-formed", body: `<propfind xmlns="DAV:"><prop>`, bad: true},
		{name: "wrong root", body: `<foo xmlns="DAV:"><allprop/></foo>`, bad: true},
		{name: "no namespace", body: `<propfind><allprop/></propfind>`, bad: true},
		{name: "nothing asked", body: `<propfind xmlns="DAV:"></propfind>`, bad: true},
		{name: "two modes", body: `<propfind xmlns="DAV:"><allprop/><propname/></propfind>`, bad: true},
		{name: "trailing garbage", body: `<propfind xmlns="DAV:"><allprop/></propfind><x`, bad: true},
	}
	for _, tt := range tests {
		var body []byte
		if tt.body != "" {
			body = []byte(tt.body)
		}
		req, err := parsePropfind(body)
		if tt.bad {
			if err == nil {
				t.Errorf("%s: parsed %q, want an error", tt.name, tt.body)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if req.mode != tt.mode || len(req.names) != tt.names {
			t.Errorf("%s: got mode %d with %d names, want %d with %d", tt.name, req.mode, len(req.names), tt.mode, tt.names)
		}
	}
}

func TestParseProppatchOrderAndValues(t *testing.T) {
	body := `<D:propertyupdate xmlns:D="DAV:" xmlns:Z="http://ns.example.com/z/">
	<D:set><D:prop><Z:Authors><Z:Author a="1">Jim &amp; Roy</Z:Author></Z:Authors></D:prop></D:set>
	<D:remove><D:prop><Z:Copyright-Owner/></D:prop></D:remove></D:propertyupdate>`
	ops, err := parseProppatch([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 2 || ops[0].remove || !ops[1].remove {
		t.Fatalf("got %+v, want a set then a remove", ops)
	}
	// The value must stand on its own: Z's prefix is gone when it is sent back.
	want := `<Author xmlns="http://ns.example.com/z/" a="1">Jim &amp; Roy</Author>`
	if ops[0].value != want {
		t.Errorf("value: got %s, want %s", ops[0].value, want)
	}
	if !strings.Contains(ops[0].text, "Jim & Roy") {
		t.Errorf("text: got %q", ops[0].text)
	}
}

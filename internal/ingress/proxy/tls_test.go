package proxy

import (
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/fjord-net/fjord/internal/ingress/ingresstest"
	"github.com/fjord-net/fjord/internal/ingress/route"
)

func keyPair(t *testing.T, host string) *tls.Certificate {
	t.Helper()
	crt, key := ingresstest.CertPEM(t, host)
	c, err := tls.X509KeyPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	return &c
}

// tlsSetup serves a.example and b.example with their own certificates.
func tlsSetup(t *testing.T) (*testProxy, *backend) {
	be := startBackend(t, "be", 0, nil)
	tp := startProxy(t, defaults())
	ings := []*networkingv1.Ingress{
		ingress("ns", "a", "nginx", map[string]string{"a.example/": "s:http"}, map[string][]string{"a-tls": {"a.example"}}),
		ingress("ns", "b", "nginx", map[string]string{"b.example/": "s:http"}, map[string][]string{"b-tls": {"b.example"}}),
		ingress("ns", "plain", "nginx", map[string]string{"plain.example/": "s:http"}, nil),
	}
	tp.p.Swap(&Snapshot{
		Routes:    route.Build(ings, "nginx", true),
		Upstreams: map[UpstreamKey]Upstream{key("ns", "s", "http"): {Endpoints: []netipAddrPort{be.addr(t)}}},
		Certs: map[SecretRef]*tls.Certificate{
			{"ns", "a-tls"}: keyPair(t, "a.example"),
			{"ns", "b-tls"}: keyPair(t, "b.example"),
		},
		Config: defaults(),
	})
	return tp, be
}

func TestSNISelectsCertificatePerHostAndDefaultOtherwise(t *testing.T) {
	tp, _ := tlsSetup(t)
	for sni, wantCN := range map[string]string{
		"a.example":       "a.example",
		"b.example":       "b.example",
		"unknown.example": DefaultCertificateName,
		"":                DefaultCertificateName,
	} {
		conn, err := tls.Dial("tcp", tp.httpsAddr, &tls.Config{InsecureSkipVerify: true, ServerName: sni})
		if err != nil {
			t.Fatalf("SNI %q: %v", sni, err)
		}
		cs := conn.ConnectionState()
		conn.Close()
		if cn := cs.PeerCertificates[0].Subject.CommonName; cn != wantCN {
			t.Errorf("SNI %q: certificate %q, want %q", sni, cn, wantCN)
		}
	}
}

func TestTLSVersionsFollowSSLProtocols(t *testing.T) {
	tp, _ := tlsSetup(t)
	dial := func(minV, maxV uint16) error {
		conn, err := tls.Dial("tcp", tp.httpsAddr, &tls.Config{InsecureSkipVerify: true, ServerName: "a.example", MinVersion: minV, MaxVersion: maxV})
		if err == nil {
			conn.Close()
		}
		return err
	}
	if err := dial(tls.VersionTLS10, tls.VersionTLS11); err == nil {
		t.Error("TLS 1.1 was accepted")
	}
	if err := dial(tls.VersionTLS12, tls.VersionTLS12); err != nil {
		t.Errorf("TLS 1.2 refused: %v", err)
	}
	if err := dial(tls.VersionTLS13, tls.VersionTLS13); err != nil {
		t.Errorf("TLS 1.3 refused: %v", err)
	}
	// ssl-protocols "TLSv1.3" alone refuses 1.2, without a restart.
	snap := *tp.p.Snapshot()
	snap.Config.SSLProtocols = []uint16{tls.VersionTLS13}
	tp.p.Swap(&snap)
	if err := dial(tls.VersionTLS12, tls.VersionTLS12); err == nil {
		t.Error("TLS 1.2 accepted with ssl-protocols TLSv1.3")
	}
}

func TestHTTP2OverTLSAndRedirect(t *testing.T) {
	tp, _ := tlsSetup(t)
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// Dial by address, with Host and SNI set (nothing is resolved).
	req, _ := http.NewRequest("GET", "https://"+tp.httpsAddr+"/x", nil)
	req.Host = "a.example"
	tr.TLSClientConfig.ServerName = "a.example"
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 || string(body) != "be" {
		t.Errorf("https a.example: %s %d %q, want HTTP/2 200 be", resp.Proto, resp.StatusCode, body)
	}

	hc := client(t)
	code, _, h := get(t, hc, tp.httpURL+"/some/path?q=1", "a.example")
	port := tp.httpsAddr[strings.LastIndex(tp.httpsAddr, ":")+1:]
	if want := "https://a.example:" + port + "/some/path?q=1"; code != http.StatusPermanentRedirect || h.Get("Location") != want {
		t.Errorf("http a.example: %d Location %q, want 308 %q", code, h.Get("Location"), want)
	}
	if code, body, _ := get(t, hc, tp.httpURL+"/", "plain.example"); code != 200 || body != "be" {
		t.Errorf("http plain.example (no TLS): %d %q, want 200", code, body)
	}
	// ssl-redirect "false" serves TLS hosts over plain HTTP too.
	snap := *tp.p.Snapshot()
	snap.Config.SSLRedirect = false
	tp.p.Swap(&snap)
	if code, _, _ := get(t, hc, tp.httpURL+"/", "a.example"); code != 200 {
		t.Errorf("http a.example with ssl-redirect false: %d, want 200", code)
	}
}

package proxy

import (
	"crypto/tls"
)

// TLSConfig returns the TLS configuration for the HTTPS listener. Each
// handshake reads the current Snapshot: the certificate is the one of the
// TLS Secret that covers the SNI name (exact host before "*." wildcard),
// else the default certificate; versions come from ssl-protocols (TLS 1.2
// and 1.3 only); ALPN offers h2 and http/1.1.
func (p *Proxy) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		NextProtos:         []string{"h2", "http/1.1"},
		Certificates:       []tls.Certificate{*p.defCert},
		GetConfigForClient: p.configForClient,
	}
}

func (p *Proxy) configForClient(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	snap := p.cur.Load().snap
	cert := p.defCert
	if hello.ServerName != "" {
		if ns, name, ok := snap.Routes.TLSHosts(hello.ServerName); ok {
			if c := snap.Certs[SecretRef{Namespace: ns, Name: name}]; c != nil {
				cert = c
			}
		}
	}
	minV, maxV := uint16(tls.VersionTLS12), uint16(tls.VersionTLS13)
	if v := snap.Config.SSLProtocols; len(v) > 0 {
		minV, maxV = v[0], v[len(v)-1]
	}
	return &tls.Config{
		MinVersion:   minV,
		MaxVersion:   maxV,
		NextProtos:   []string{"h2", "http/1.1"},
		Certificates: []tls.Certificate{*cert},
	}, nil
}

// DefaultCertificate returns the self-signed certificate served when no
// TLS Secret covers the requested name.
func (p *Proxy) DefaultCertificate() *tls.Certificate { return p.defCert }

package controller

import (
	"crypto/tls"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// certCache parses kubernetes.io/tls Secrets into certificates, once per
// Secret version.
type certCache struct {
	mu sync.Mutex
	m  map[types.UID]certEntry
}

type certEntry struct {
	rv   string
	cert *tls.Certificate
	err  error
}

func newCertCache() *certCache { return &certCache{m: map[types.UID]certEntry{}} }

// get returns the certificate of a Secret. The Secret must be of type
// kubernetes.io/tls (or Opaque) and hold tls.crt and tls.key.
func (c *certCache) get(s *corev1.Secret) (*tls.Certificate, error) {
	key := s.UID
	if key == "" {
		key = types.UID(s.Namespace + "/" + s.Name)
	}
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if ok && e.rv == s.ResourceVersion && s.ResourceVersion != "" {
		return e.cert, e.err
	}
	cert, err := parseTLSSecret(s)
	c.mu.Lock()
	c.m[key] = certEntry{rv: s.ResourceVersion, cert: cert, err: err}
	c.mu.Unlock()
	return cert, err
}

// prune forgets Secrets not in keep.
func (c *certCache) prune(keep map[types.UID]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.m {
		if !keep[k] {
			delete(c.m, k)
		}
	}
}

func parseTLSSecret(s *corev1.Secret) (*tls.Certificate, error) {
	if s.Type != corev1.SecretTypeTLS && s.Type != corev1.SecretTypeOpaque && s.Type != "" {
		return nil, fmt.Errorf("secret %s/%s: type is %q, want %q", s.Namespace, s.Name, s.Type, corev1.SecretTypeTLS)
	}
	crt, key := s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]
	if len(crt) == 0 || len(key) == 0 {
		return nil, fmt.Errorf("secret %s/%s: data.%s and data.%s must both be set", s.Namespace, s.Name, corev1.TLSCertKey, corev1.TLSPrivateKeyKey)
	}
	cert, err := tls.X509KeyPair(crt, key)
	if err != nil {
		return nil, fmt.Errorf("secret %s/%s: %w", s.Namespace, s.Name, err)
	}
	return &cert, nil
}

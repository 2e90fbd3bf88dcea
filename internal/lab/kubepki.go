package lab

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The Kubernetes lab's credentials: a CA, the API server's serving certificate, the
// service-account signing key, and one bearer token per user (the API server's
// --token-auth-file). Everything lives in the lab's state directory and goes with it.

// kubeUser is one identity of the lab's control plane.
type kubeUser struct {
	Name   string   // user name the API server authenticates
	Groups []string // its groups
	File   string   // kubeconfig file name
}

// kubeUsers are the lab's identities: the admin, the control plane, fjord's agents and
// ingress (bound to deploy/fjord.yaml's least-privilege ClusterRoles), and one kubelet
// per node (the Node authorizer gives it its own Node, Lease and pods).
func (c Config) kubeUsers() []kubeUser {
	us := []kubeUser{
		{Name: "lab-admin", Groups: []string{"system:masters"}, File: "admin.kubeconfig"},
		{Name: "system:kube-controller-manager", File: "controller-manager.kubeconfig"},
		{Name: "system:kube-scheduler", File: "scheduler.kubeconfig"},
		{Name: LabAgentUser, File: "agent.kubeconfig"},
		{Name: LabIngressUser, File: "ingress.kubeconfig"},
	}
	for i := 1; i <= c.Nodes; i++ {
		us = append(us, kubeUser{Name: "system:node:" + c.NodeName(i), Groups: []string{"system:nodes"}, File: "kubelet-" + c.NodeName(i) + ".kubeconfig"})
	}
	return us
}

// The users fjord's own processes run as in the Kubernetes lab.
const (
	LabAgentUser   = "fjord:agent"
	LabIngressUser = "fjord:ingress"
)

// KubeDir holds the Kubernetes lab's credentials and configuration.
func (c Config) KubeDir() string { return filepath.Join(c.StateDir(), "kube") }

// Kubeconfig is the path of a user's kubeconfig ("admin", "agent", "kubelet-n1", ...).
func (c Config) Kubeconfig(user string) string {
	return filepath.Join(c.KubeDir(), user+".kubeconfig")
}

// APIServerAddr is where the API server listens: on the first node, as on a kubeadm
// control-plane node that also runs workloads (and fjord).
func (c Config) APIServerAddr() netip.AddrPort { return netip.AddrPortFrom(c.NodeAddr(1), 6443) }

// writeKubePKI creates the CA, serving certificate, service-account key, tokens and
// kubeconfigs.
func (c Config) writeKubePKI(serviceCIDR netip.Prefix) error {
	dir := c.KubeDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	caKey, caCert, caDER, err := newCA()
	if err != nil {
		return err
	}
	apiIP := c.APIServerAddr().Addr()
	kubeSvcIP := serviceCIDR.Masked().Addr().Next()
	srvKey, srvDER, err := newServing(caKey, caCert, "kube-apiserver",
		[]string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost"},
		[]net.IP{apiIP.AsSlice(), kubeSvcIP.AsSlice(), net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return err
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"ca.crt":        pemBlock("CERTIFICATE", caDER),
		"apiserver.crt": pemBlock("CERTIFICATE", srvDER),
	}
	for name, key := range map[string]*ecdsa.PrivateKey{"ca.key": caKey, "apiserver.key": srvKey, "sa.key": saKey} {
		der, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return err
		}
		files[name] = pemBlock("EC PRIVATE KEY", der)
	}
	pub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return err
	}
	files["sa.pub"] = pemBlock("PUBLIC KEY", pub)
	var tokens strings.Builder
	server := "https://" + c.APIServerAddr().String()
	for _, u := range c.kubeUsers() {
		tok, err := randomToken()
		if err != nil {
			return err
		}
		fmt.Fprintf(&tokens, "%s,%s,%s,%q\n", tok, u.Name, u.Name, strings.Join(u.Groups, ","))
		files[u.File] = kubeconfig(server, files["ca.crt"], u.Name, tok)
	}
	files["tokens.csv"] = []byte(tokens.String())
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func newCA() (*ecdsa.PrivateKey, *x509.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fjord-lab-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return key, cert, der, err
}

func newServing(caKey *ecdsa.PrivateKey, ca *x509.Certificate, cn string, dns []string, ips []net.IP) (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: dns, IPAddresses: ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	return key, der, err
}

func pemBlock(kind string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
}

func randomToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// kubeconfig is user's kubeconfig with the CA inlined: self-contained (a node that
// cannot see the lab's state directory can use a copy), and a process that talks to
// successive labs never reuses a TLS transport client-go cached for an earlier CA by
// its file name.
func kubeconfig(server string, caPEM []byte, user, token string) []byte {
	return fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
- name: fjord-lab
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %q
  user:
    token: %s
contexts:
- name: fjord-lab
  context:
    cluster: fjord-lab
    user: %q
current-context: fjord-lab
`, server, base64.StdEncoding.EncodeToString(caPEM), user, token, user)
}

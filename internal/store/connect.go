package store

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// ClientConfig says how to reach etcd.
type ClientConfig struct {
	Endpoints []string // unix:///path or https://host:2379
	CACert    string   // PEM file; required with Cert/Key for TLS
	Cert      string
	Key       string
	// DialTimeout bounds the first connection (default 5s).
	DialTimeout time.Duration
}

// Validate checks the configuration before connecting.
func (c ClientConfig) Validate() error {
	if len(c.Endpoints) == 0 {
		return errors.New("--etcd-endpoints: at least one endpoint is required")
	}
	for _, e := range c.Endpoints {
		if !strings.HasPrefix(e, "unix://") && !strings.HasPrefix(e, "http://") && !strings.HasPrefix(e, "https://") && !strings.HasPrefix(e, "unixs://") {
			return fmt.Errorf("--etcd-endpoints: %q must start with unix://, http:// or https://", e)
		}
	}
	if (c.Cert == "") != (c.Key == "") {
		return errors.New("--etcd-cert and --etcd-key must be given together")
	}
	return nil
}

func (c ClientConfig) tls() (*tls.Config, error) {
	if c.CACert == "" && c.Cert == "" {
		return nil, nil
	}
	info := transport.TLSInfo{TrustedCAFile: c.CACert, CertFile: c.Cert, KeyFile: c.Key}
	return info.ClientConfig()
}

// Connect opens an etcd client and checks the cluster answers.
func Connect(ctx context.Context, c ClientConfig) (*clientv3.Client, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	tlsCfg, err := c.tls()
	if err != nil {
		return nil, fmt.Errorf("etcd TLS: %w", err)
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 5 * time.Second
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   c.Endpoints,
		DialTimeout: c.DialTimeout,
		TLS:         tlsCfg,
		Logger:      zap.NewNop(),
		Context:     ctx,
		// gRPC's default 2 MiB would refuse an apply of a few thousand objects
		// that the embedded server (16 MiB requests) accepts; a larger request
		// now gets the server's own "request is too large".
		MaxCallSendMsgSize: 17 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("etcd %v: %w", c.Endpoints, err)
	}
	sctx, cancel := context.WithTimeout(ctx, c.DialTimeout)
	defer cancel()
	if _, err := cli.Get(sctx, "/fjord-health", clientv3.WithCountOnly()); err != nil {
		cli.Close()
		return nil, fmt.Errorf("etcd %v is not answering: %w", c.Endpoints, err)
	}
	return cli, nil
}

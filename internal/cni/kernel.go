package cni

import (
	"errors"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// kernel is one netlink handle in the plugin's (host) namespace and, when a pod
// namespace is given, one bound to it. Using handles instead of switching the thread
// into the pod namespace keeps ADD to a handful of netlink round trips.
type kernel struct {
	host *netlink.Handle
	pod  *netlink.Handle // nil when opened without a pod namespace
}

// openKernel opens the handles; pod may be netns.None().
func openKernel(pod netns.NsHandle) (*kernel, error) {
	k := &kernel{}
	var err error
	if k.host, err = netlink.NewHandle(); err != nil {
		return nil, err
	}
	if pod.IsOpen() {
		if k.pod, err = netlink.NewHandleAt(pod); err != nil {
			k.host.Close()
			return nil, err
		}
	}
	return k, nil
}

func (k *kernel) close() {
	k.host.Close()
	if k.pod != nil {
		k.pod.Close()
	}
}

// isNotFound reports whether err means the link does not exist.
func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}

// hostVeth returns the host veth named name if it carries alias, or nil.
func (k *kernel) hostVeth(name, alias string) (netlink.Link, error) {
	l, err := k.host.LinkByName(name)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if l.Attrs().Alias != alias {
		return nil, nil
	}
	return l, nil
}

// dumpRetries bounds retries of a netlink dump the kernel interrupted because the
// table changed meanwhile (NLM_F_DUMP_INTR), as plugins/pkg/netlinksafe does.
const dumpRetries = 5

// retryDump runs a netlink dump until it completes uninterrupted.
func retryDump[T any](dump func() (T, error)) (T, error) {
	var v T
	var err error
	for range dumpRetries {
		v, err = dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
	}
	return v, err
}

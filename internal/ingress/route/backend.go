package route

import (
	"fmt"
	"strconv"
)

// Port is a Service port, given either by number or by name (exactly one
// is set).
type Port struct {
	Number int32
	Name   string
}

// String returns the port number or name.
func (p Port) String() string {
	if p.Name != "" {
		return p.Name
	}
	return strconv.Itoa(int(p.Number))
}

// Backend is the Service a request is routed to, and the Ingress that
// routed it there.
type Backend struct {
	Namespace   string
	Service     string
	Port        Port
	IngressName string
}

// String renders the backend as namespace/service:port (from ingress).
func (b Backend) String() string {
	return fmt.Sprintf("%s/%s:%s (ingress %s)", b.Namespace, b.Service, b.Port, b.IngressName)
}

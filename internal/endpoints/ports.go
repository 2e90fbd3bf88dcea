package endpoints

import (
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// portMapping is the ports one pod serves for a Service, in the Service's port order:
// every service port whose targetPort resolves in that pod.
type portMapping []resolvedPort

type resolvedPort struct {
	name     string
	protocol corev1.Protocol
	port     int32
	app      *string
}

// resolvePorts resolves each service port's targetPort for one pod, as kube does:
// a number is taken as is (an unset targetPort means the service port), a name is looked
// up among the pod's container ports with the same protocol; a name that no container
// declares leaves that port out for this pod.
func resolvePorts(svc *corev1.Service, pod *corev1.Pod) portMapping {
	var out portMapping
	for _, sp := range svc.Spec.Ports {
		proto := sp.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		port, ok := targetPort(sp, proto, pod)
		if !ok {
			continue
		}
		out = append(out, resolvedPort{name: sp.Name, protocol: proto, port: port, app: sp.AppProtocol})
	}
	return out
}

func targetPort(sp corev1.ServicePort, proto corev1.Protocol, pod *corev1.Pod) (int32, bool) {
	tp := sp.TargetPort
	switch {
	case tp.Type == intstr.String && tp.StrVal != "":
		for _, c := range pod.Spec.Containers {
			for _, cp := range c.Ports {
				cpProto := cp.Protocol
				if cpProto == "" {
					cpProto = corev1.ProtocolTCP
				}
				if cp.Name == tp.StrVal && cpProto == proto {
					return cp.ContainerPort, true
				}
			}
		}
		return 0, false
	case tp.Type == intstr.Int && tp.IntVal != 0:
		return tp.IntVal, true
	default:
		return sp.Port, true
	}
}

// key identifies a mapping; pods with equal keys share a slice.
func (m portMapping) key() string {
	var b strings.Builder
	for i, p := range m {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(p.name)
		b.WriteByte('/')
		b.WriteString(string(p.protocol))
		b.WriteByte('/')
		b.WriteString(strconv.Itoa(int(p.port)))
	}
	return b.String()
}

func (m portMapping) endpointPorts() []discoveryv1.EndpointPort {
	out := make([]discoveryv1.EndpointPort, 0, len(m))
	for _, p := range m {
		name, proto, port := p.name, p.protocol, p.port
		ep := discoveryv1.EndpointPort{Name: &name, Protocol: &proto, Port: &port}
		if p.app != nil {
			a := *p.app
			ep.AppProtocol = &a
		}
		out = append(out, ep)
	}
	return out
}

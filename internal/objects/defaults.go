package objects

import (
	"errors"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// defaultClientIPTimeout is kube-apiserver's default for sessionAffinityConfig.clientIP.
const defaultClientIPTimeout = 10800

// applyDefaults fills in the fields kube-apiserver defaults on create, so that consumers
// (the service proxy, the agent) see the same objects they would see on a real cluster
// and need no defaulting of their own. Only defaults that matter to the data plane are
// applied.
func applyDefaults(obj Object) {
	switch o := obj.(type) {
	case *corev1.Service:
		defaultService(&o.Spec)
	case *corev1.Pod:
		for _, cs := range [][]corev1.Container{o.Spec.InitContainers, o.Spec.Containers} {
			for i := range cs {
				for j := range cs[i].Ports {
					if cs[i].Ports[j].Protocol == "" {
						cs[i].Ports[j].Protocol = corev1.ProtocolTCP
					}
				}
			}
		}
	case *discoveryv1.EndpointSlice:
		for i := range o.Ports {
			if o.Ports[i].Protocol == nil {
				tcp := corev1.ProtocolTCP
				o.Ports[i].Protocol = &tcp
			}
		}
	case *corev1.Secret:
		if o.Type == "" {
			o.Type = corev1.SecretTypeOpaque
		}
		// stringData is write-only: the apiserver merges it into data.
		if len(o.StringData) > 0 {
			if o.Data == nil {
				o.Data = map[string][]byte{}
			}
			for k, v := range o.StringData {
				o.Data[k] = []byte(v)
			}
			o.StringData = nil
		}
	}
}

func defaultService(s *corev1.ServiceSpec) {
	if s.Type == "" {
		s.Type = corev1.ServiceTypeClusterIP
	}
	if s.SessionAffinity == "" {
		s.SessionAffinity = corev1.ServiceAffinityNone
	}
	if s.SessionAffinity == corev1.ServiceAffinityClientIP {
		if s.SessionAffinityConfig == nil {
			s.SessionAffinityConfig = &corev1.SessionAffinityConfig{}
		}
		if s.SessionAffinityConfig.ClientIP == nil {
			s.SessionAffinityConfig.ClientIP = &corev1.ClientIPConfig{}
		}
		if s.SessionAffinityConfig.ClientIP.TimeoutSeconds == nil {
			t := int32(defaultClientIPTimeout)
			s.SessionAffinityConfig.ClientIP.TimeoutSeconds = &t
		}
	}
	for i := range s.Ports {
		p := &s.Ports[i]
		if p.Protocol == "" {
			p.Protocol = corev1.ProtocolTCP
		}
		if p.TargetPort == intstr.FromInt32(0) || p.TargetPort == intstr.FromString("") {
			p.TargetPort = intstr.FromInt32(p.Port)
		}
	}
	if s.Type != corev1.ServiceTypeExternalName {
		if s.InternalTrafficPolicy == nil {
			c := corev1.ServiceInternalTrafficPolicyCluster
			s.InternalTrafficPolicy = &c
		}
		if externallyAccessible(s) && s.ExternalTrafficPolicy == "" {
			s.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
		}
	}
}

// externallyAccessible is kube's rule for when externalTrafficPolicy applies.
func externallyAccessible(s *corev1.ServiceSpec) bool {
	return s.Type == corev1.ServiceTypeLoadBalancer || s.Type == corev1.ServiceTypeNodePort ||
		(s.Type == corev1.ServiceTypeClusterIP && len(s.ExternalIPs) > 0)
}

// Admit prepares objects built in code (not decoded from a manifest) exactly as Decode
// prepares manifests: apiserver defaults, then validation. The lab's demo workload goes
// through it, so it is stored just like the same objects applied from YAML.
func Admit(objs ...Object) error {
	var errs []error
	for _, o := range objs {
		applyDefaults(o)
		if err := Validate(o); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

package objects

import (
	"fmt"
	"net/netip"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// maxIngressClassController is kube's length limit of spec.controller.
const maxIngressClassController = 250

func validateIngress(ing *networkingv1.Ingress) field.ErrorList {
	errs := validateMeta(ing, true, apivalidation.NameIsDNSSubdomain)
	s := &ing.Spec
	spec := field.NewPath("spec")
	if len(s.Rules) == 0 && s.DefaultBackend == nil {
		errs = append(errs, field.Required(spec, "either `defaultBackend` or `rules` must be specified"))
	}
	if s.IngressClassName != nil {
		errs = append(errs, validateDNSSubdomain(*s.IngressClassName, spec.Child("ingressClassName"))...)
	}
	if s.DefaultBackend != nil {
		errs = append(errs, validateIngressBackend(s.DefaultBackend, spec.Child("defaultBackend"))...)
	}
	for i, r := range s.Rules {
		rp := spec.Child("rules").Index(i)
		if r.Host != "" {
			errs = append(errs, validateIngressHost(r.Host, rp.Child("host"))...)
		}
		if r.HTTP == nil {
			continue
		}
		paths := rp.Child("http", "paths")
		if len(r.HTTP.Paths) == 0 {
			errs = append(errs, field.Required(paths, ""))
		}
		for j := range r.HTTP.Paths {
			errs = append(errs, validateIngressPath(&r.HTTP.Paths[j], paths.Index(j))...)
		}
	}
	for i, t := range s.TLS {
		tp := spec.Child("tls").Index(i)
		for j, h := range t.Hosts {
			// A TLS host may be a wildcard; check it as the name it stands for.
			for _, msg := range validation.IsDNS1123Subdomain(strings.Replace(h, "*", "x", 1)) {
				errs = append(errs, field.Invalid(tp.Child("hosts").Index(j), h, msg))
			}
		}
		if t.SecretName != "" {
			errs = append(errs, validateDNSSubdomain(t.SecretName, tp.Child("secretName"))...)
		}
	}
	return errs
}

func validateIngressHost(host string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if _, err := netip.ParseAddr(host); err == nil {
		errs = append(errs, field.Invalid(path, host, "must be a DNS name, not an IP address"))
	}
	check := validation.IsDNS1123Subdomain
	if strings.Contains(host, "*") {
		check = validation.IsWildcardDNS1123Subdomain
	}
	for _, msg := range check(host) {
		errs = append(errs, field.Invalid(path, host, msg))
	}
	return errs
}

func validateIngressPath(p *networkingv1.HTTPIngressPath, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if p.PathType == nil {
		errs = append(errs, field.Required(path.Child("pathType"), "pathType must be specified"))
	} else {
		switch *p.PathType {
		case networkingv1.PathTypeExact, networkingv1.PathTypePrefix:
			if !strings.HasPrefix(p.Path, "/") {
				errs = append(errs, field.Invalid(path.Child("path"), p.Path, "must be an absolute path"))
			}
			// kube rejects these: they match differently before and after a proxy
			// normalises the path.
			for _, seq := range []string{"//", "/./", "/../", "%2f", "%2F"} {
				if strings.Contains(p.Path, seq) {
					errs = append(errs, field.Invalid(path.Child("path"), p.Path, fmt.Sprintf("must not contain '%s'", seq)))
				}
			}
			for _, suf := range []string{"/..", "/."} {
				if strings.HasSuffix(p.Path, suf) {
					errs = append(errs, field.Invalid(path.Child("path"), p.Path, fmt.Sprintf("cannot end with '%s'", suf)))
				}
			}
		case networkingv1.PathTypeImplementationSpecific:
			if p.Path != "" && !strings.HasPrefix(p.Path, "/") {
				errs = append(errs, field.Invalid(path.Child("path"), p.Path, "must be an absolute path"))
			}
		default:
			errs = append(errs, field.NotSupported(path.Child("pathType"), *p.PathType, []string{"Exact", "ImplementationSpecific", "Prefix"}))
		}
	}
	return append(errs, validateIngressBackend(&p.Backend, path.Child("backend"))...)
}

func validateIngressBackend(b *networkingv1.IngressBackend, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case b.Service != nil && b.Resource != nil:
		errs = append(errs, field.Invalid(path, field.OmitValueType{}, "cannot set both resource and service backends"))
	case b.Resource != nil:
		r := b.Resource
		rp := path.Child("resource")
		if r.APIGroup != nil && *r.APIGroup != "" {
			errs = append(errs, validateDNSSubdomain(*r.APIGroup, rp.Child("apiGroup"))...)
		}
		if r.Kind == "" {
			errs = append(errs, field.Required(rp.Child("kind"), ""))
		}
		if r.Name == "" {
			errs = append(errs, field.Required(rp.Child("name"), ""))
		}
	case b.Service != nil:
		sp := path.Child("service")
		if b.Service.Name == "" {
			errs = append(errs, field.Required(sp.Child("name"), ""))
		} else {
			for _, msg := range apivalidation.NameIsDNS1035Label(b.Service.Name, false) {
				errs = append(errs, field.Invalid(sp.Child("name"), b.Service.Name, msg))
			}
		}
		port := b.Service.Port
		switch {
		case port.Name != "" && port.Number != 0:
			errs = append(errs, field.Invalid(sp.Child("port"), field.OmitValueType{}, "cannot set both port name & port number"))
		case port.Name != "":
			errs = append(errs, validatePortName(port.Name, sp.Child("port", "name"))...)
		case port.Number != 0:
			errs = append(errs, validatePortNum(port.Number, sp.Child("port", "number"))...)
		default:
			errs = append(errs, field.Required(sp.Child("port"), "port name or number is required"))
		}
	default:
		errs = append(errs, field.Required(path, "resource or service backend is required"))
	}
	return errs
}

func validateIngressClass(ic *networkingv1.IngressClass) field.ErrorList {
	errs := validateMeta(ic, false, apivalidation.NameIsDNSSubdomain)
	spec := field.NewPath("spec")
	c := ic.Spec.Controller
	switch {
	case c == "":
		errs = append(errs, field.Required(spec.Child("controller"), ""))
	case len(c) > maxIngressClassController:
		errs = append(errs, field.TooLong(spec.Child("controller"), c, maxIngressClassController))
	default:
		errs = append(errs, validation.IsDomainPrefixedPath(spec.Child("controller"), c)...)
	}
	if p := ic.Spec.Parameters; p != nil {
		pp := spec.Child("parameters")
		if p.APIGroup != nil && *p.APIGroup != "" {
			errs = append(errs, validateDNSSubdomain(*p.APIGroup, pp.Child("apiGroup"))...)
		}
		if p.Kind == "" {
			errs = append(errs, field.Required(pp.Child("kind"), ""))
		}
		if p.Name == "" {
			errs = append(errs, field.Required(pp.Child("name"), ""))
		}
		scope := "Cluster"
		if p.Scope != nil {
			scope = *p.Scope
			errs = append(errs, oneOf(scope, pp.Child("scope"), "Cluster", "Namespace")...)
		}
		switch {
		case scope == "Namespace" && (p.Namespace == nil || *p.Namespace == ""):
			errs = append(errs, field.Required(pp.Child("namespace"), "`parameters.scope` is set to 'Namespace'"))
		case scope == "Namespace":
			errs = append(errs, validateDNSLabel(*p.Namespace, pp.Child("namespace"))...)
		case p.Namespace != nil && *p.Namespace != "":
			errs = append(errs, field.Forbidden(pp.Child("namespace"), "`parameters.scope` is set to 'Cluster'"))
		}
	}
	return errs
}

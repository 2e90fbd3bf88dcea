// Package config parses a standard kube-proxy KubeProxyConfiguration
// (apiVersion kubeproxy.config.k8s.io/v1alpha1) strictly and turns it into
// the effective settings fjord's service proxy runs with.
//
// Parsing is strict: an unknown field, a value of the wrong type, or an
// invalid value is an error that names the field path (for example
// "ipvs.schedular: unknown field"). The package is pure: it reads bytes and
// returns values, with no I/O and no global state.
package config

// Package nginxconf reads the ingress-nginx ConfigMap (its data map) into a
// typed Config that carries ingress-nginx's defaults for every key it does
// not set, and compiles nginx access-log formats (log-format-upstream) into
// renderers.
//
// The package is pure: it does no I/O. Parse either returns a complete
// Config or an error naming the offending key and value, so a caller can
// keep serving with its last good Config.
package nginxconf

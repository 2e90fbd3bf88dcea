// Package route compiles Kubernetes Ingress v1 objects into an immutable
// routing Table that answers "which backend serves this host and path?".
//
// The package is pure: it opens no sockets and proxies nothing. A proxy
// builds a new Table whenever the set of Ingresses changes and swaps it in
// atomically; a Table is never modified after Build returns, so it is safe
// for concurrent use.
//
// Semantics (Ingress v1, see k8s.io/api/networking/v1):
//
//   - Class: an Ingress is taken when spec.ingressClassName, or when that
//     is unset the legacy annotation kubernetes.io/ingress.class, equals the
//     controller's class. Ingresses with neither are taken only when the
//     controller's class is the default class.
//   - Hosts: matched case-insensitively with any port and trailing dot
//     removed. "*.foo.com" matches exactly one extra DNS label
//     ("bar.foo.com", not "foo.com" nor "a.bar.foo.com").
//   - Host precedence: an exact host beats a wildcard host, which beats
//     rules without a host. The most specific host that has any rule is
//     chosen; if none of its paths match, the request does NOT fall through
//     to less specific hosts (like an nginx server block or a Gateway API
//     listener), it goes to the default backend.
//   - Request paths are normalised first, as nginx does before it picks a
//     location (NormalizePath: decode, merge slashes, resolve dot
//     segments; refuse what nginx answers with 400), and EscapePath gives
//     the form to forward when normalising changed the path's structure.
//   - Paths: Exact compares strings. Prefix compares element by element on
//     "/", ignoring a trailing slash ("/foo" matches "/foo", "/foo/" and
//     "/foo/bar", not "/foobar"; "/" matches everything).
//     ImplementationSpecific is treated exactly like Prefix. The longest
//     matching path wins; at equal length Exact beats Prefix. Match looks
//     the host up in a map and then does one map lookup per path element,
//     so cost does not grow with the number of rules.
//   - Conflicts: Ingresses are processed oldest first (creationTimestamp,
//     then namespace, then name). When two Ingresses define the same host,
//     path (after Prefix normalisation) and path type, or both set a
//     defaultBackend, or both give a TLS secret for the same host, the
//     first one processed wins and the loser is described in
//     Table.Conflicts.
//   - Default backend: the winning spec.defaultBackend (see Conflicts)
//     serves requests that match no rule.
//   - Unsupported input (resource backends, invalid hosts or paths) is
//     skipped and described in Table.Skipped.
package route

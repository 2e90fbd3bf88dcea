package objects

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	sjson "sigs.k8s.io/json"
)

// MaxInputBytes bounds one input to Decode. etcd refuses requests above 16 MiB anyway, so
// a bigger manifest can never be applied; refusing it early keeps memory bounded.
const MaxInputBytes = 32 << 20

// Decode reads every object in r and returns them typed (*corev1.Pod, ...), in input
// order. r holds YAML documents separated by "---", or JSON objects; a "List" object
// contributes its items. source names the input in error messages ("pods.yaml").
//
// Decoding is strict: unknown or duplicate fields, a missing or wrong apiVersion and kinds
// fjord does not store are errors. Empty documents are skipped. Namespaced objects without
// a namespace get "default", and the defaults kube-apiserver would fill in are filled in
// (see defaults.go), so the stored object is what a real cluster would store.
//
// Decode goes on past bad documents: it returns every object it could decode together
// with one error per problem (joined), so a user sees all mistakes at once.
func Decode(r io.Reader, source string) ([]Object, error) {
	return Kinds().Decode(r, source)
}

// Decode is the package-level Decode against this registry.
func (reg Registry) Decode(r io.Reader, source string) ([]Object, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxInputBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if len(data) > MaxInputBytes {
		return nil, fmt.Errorf("%s: larger than %d MiB", source, MaxInputBytes>>20)
	}
	var objs []Object
	var errs []error
	for i, doc := range splitDocuments(data) {
		label := fmt.Sprintf("%s: document %d", source, i+1)
		if doc.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", label, doc.err))
			continue
		}
		got, derrs := reg.decodeDocument(doc.json, label, true)
		objs = append(objs, got...)
		errs = append(errs, derrs...)
	}
	return objs, errors.Join(errs...)
}

// header is the part of a document needed to pick its type and to name it in errors.
type header struct {
	APIVersion string
	Kind       string
	Name       string
	Namespace  string
}

// peekHeader reads apiVersion, kind and metadata leniently: a document with a broken
// spec must still be named correctly in the error about it.
func peekHeader(doc []byte) header {
	var top map[string]json.RawMessage
	_ = json.Unmarshal(doc, &top)
	var h header
	_ = json.Unmarshal(top["apiVersion"], &h.APIVersion)
	_ = json.Unmarshal(top["kind"], &h.Kind)
	var meta map[string]json.RawMessage
	_ = json.Unmarshal(top["metadata"], &meta)
	_ = json.Unmarshal(meta["name"], &h.Name)
	_ = json.Unmarshal(meta["namespace"], &h.Namespace)
	return h
}

// decodeDocument decodes one JSON object; label says where it came from.
func (reg Registry) decodeDocument(doc []byte, label string, listAllowed bool) ([]Object, []error) {
	if t := jsonType(doc); t != "object" {
		return nil, []error{fmt.Errorf("%s: expected an object with apiVersion and kind, got %s", label, article(t))}
	}
	h := peekHeader(doc)
	fail := func(format string, args ...any) ([]Object, []error) {
		return nil, []error{fmt.Errorf("%s: "+format, append([]any{label}, args...)...)}
	}
	switch {
	case h.Kind == "" && h.APIVersion == "":
		return fail("apiVersion and kind are required")
	case h.Kind == "":
		return fail("kind is required")
	case h.Kind == "KubeProxyConfiguration":
		return fail("KubeProxyConfiguration (%s) is a configuration file for 'fjord agent --config', not an object to apply", h.APIVersion)
	case h.APIVersion == "":
		return fail("apiVersion is required (%s is %q)", h.Kind, reg.apiVersionOf(h.Kind))
	case strings.HasSuffix(h.Kind, "List") && h.APIVersion == "v1":
		if !listAllowed {
			return fail("a %s may not contain another list", h.Kind)
		}
		return reg.decodeList(doc, label)
	}
	k, ok := reg.ByName(h.Kind)
	if !ok {
		return fail("kind %q (%s) is not a kind fjord stores (known: %s)", h.Kind, h.APIVersion, strings.Join(reg.kindNames(), ", "))
	}
	ns := h.Namespace
	if k.Namespaced && ns == "" {
		ns = "default"
	}
	label = fmt.Sprintf("%s (%s %s)", label, k.Name, qualifiedName(ns, h.Name))
	if h.APIVersion != k.APIVersion {
		return fail("apiVersion %q is not served for %s; use %q", h.APIVersion, k.Name, k.APIVersion)
	}
	obj := k.New()
	strictErrs, err := sjson.UnmarshalStrict(doc, obj)
	if err != nil {
		return fail("%v", describeJSONError(doc, err))
	}
	var errs []error
	for _, e := range strictErrs {
		errs = append(errs, fmt.Errorf("%s: %v", label, e))
	}
	if !k.Namespaced && obj.GetNamespace() != "" {
		errs = append(errs, fmt.Errorf("%s: metadata.namespace: Forbidden: %s is cluster-scoped and takes no namespace", label, k.Name))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if k.Namespaced && obj.GetNamespace() == "" {
		obj.SetNamespace("default")
	}
	obj.GetObjectKind().SetGroupVersionKind(GVK(k))
	applyDefaults(obj)
	return []Object{obj}, nil
}

// decodeList decodes the items of a v1 List (or PodList, ...), each as its own document.
func (reg Registry) decodeList(doc []byte, label string) ([]Object, []error) {
	var list struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(doc, &list); err != nil {
		return nil, []error{fmt.Errorf("%s: items: %v", label, describeJSONError(doc, err))}
	}
	var objs []Object
	var errs []error
	for i, item := range list.Items {
		got, e := reg.decodeDocument(item, fmt.Sprintf("%s, item %d", label, i+1), false)
		objs = append(objs, got...)
		errs = append(errs, e...)
	}
	return objs, errs
}

func (reg Registry) apiVersionOf(kind string) string {
	if k, ok := reg.ByName(kind); ok {
		return k.APIVersion
	}
	return "unknown"
}

func (reg Registry) kindNames() []string {
	var out []string
	for _, k := range reg.kinds {
		out = append(out, k.Name)
	}
	return out
}

// jsonType names the JSON type of a document by its first byte.
func jsonType(doc []byte) string {
	doc = bytes.TrimSpace(doc)
	if len(doc) == 0 {
		return "nothing"
	}
	switch doc[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number"
}

func article(t string) string {
	switch t {
	case "array", "object":
		return "an " + t
	case "nothing", "null":
		return t
	}
	return "a " + t
}

func qualifiedName(namespace, name string) string {
	if name == "" {
		name = "(no name)"
	}
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}

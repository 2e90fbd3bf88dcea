package objects

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"unicode"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// describeJSONError turns a decoding error into a field error with a precise path.
//
// The JSON decoder reports a type mismatch with the struct path only ("spec.ports.port")
// and no list index, which leaves the user to guess which port is wrong. We find the
// offending value in the document itself: the first value, in document order, at that
// path whose JSON type is the one the decoder complained about.
func describeJSONError(doc []byte, err error) error {
	value, fieldPath, goType, ok := typeErrorFields(err)
	if !ok {
		return err
	}
	got := strings.Fields(value)
	if len(got) == 0 {
		return err
	}
	var tree any
	if json.Unmarshal(doc, &tree) != nil {
		return err
	}
	var segs []string
	for _, s := range strings.Split(fieldPath, ".") {
		// Skip Go names of embedded structs ("IngressRuleValue"): JSON names are
		// lowerCamel and embedded structs are inlined in the document.
		if s != "" && !unicode.IsUpper(rune(s[0])) {
			segs = append(segs, s)
		}
	}
	msg := fmt.Sprintf("expected %s, got %s", describeGoType(goType), article(got[0]))
	p, v, found := findTyped(tree, segs, got[0], nil)
	switch {
	case !found && len(segs) > 0:
		return field.Invalid(field.NewPath(segs[0], segs[1:]...), field.OmitValueType{}, msg)
	case !found || p == nil:
		return fmt.Errorf("the document is not a valid object: %s", msg)
	}
	switch v.(type) {
	case string, float64, bool:
		return field.Invalid(p, v, msg)
	}
	return field.Invalid(p, field.OmitValueType{}, msg)
}

// typeErrorFields reads an *UnmarshalTypeError of encoding/json or of its fork in
// sigs.k8s.io/json (whose type is internal, hence reflection on the exported fields).
func typeErrorFields(err error) (value, fieldPath string, goType reflect.Type, ok bool) {
	v := reflect.ValueOf(err)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct || v.Elem().Type().Name() != "UnmarshalTypeError" {
		return "", "", nil, false
	}
	e := v.Elem()
	fv, ff, ft := e.FieldByName("Value"), e.FieldByName("Field"), e.FieldByName("Type")
	if fv.Kind() != reflect.String || ff.Kind() != reflect.String || !ft.IsValid() {
		return "", "", nil, false
	}
	if t, isType := ft.Interface().(reflect.Type); isType {
		goType = t
	}
	return fv.String(), ff.String(), goType, true
}

// findTyped walks tree along segs, trying every element of lists on the way, and returns
// the first value whose JSON type is want. Past the last segment, an object is a Go map
// and its values are tried in key order.
func findTyped(node any, segs []string, want string, p *field.Path) (*field.Path, any, bool) {
	if list, isList := node.([]any); isList {
		for i, el := range list {
			if q, v, ok := findTyped(el, segs, want, indexed(p, i)); ok {
				return q, v, true
			}
		}
		if len(segs) == 0 && want == "array" {
			return p, node, true
		}
		return nil, nil, false
	}
	if len(segs) == 0 {
		if jsonKind(node) == want {
			return p, node, true
		}
		if m, isMap := node.(map[string]any); isMap {
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				if jsonKind(m[k]) == want {
					return p.Key(k), m[k], true
				}
			}
		}
		return nil, nil, false
	}
	m, isMap := node.(map[string]any)
	if !isMap {
		return nil, nil, false
	}
	child, has := m[segs[0]]
	if !has {
		return nil, nil, false
	}
	return findTyped(child, segs[1:], want, childPath(p, segs[0]))
}

func childPath(p *field.Path, name string) *field.Path {
	if p == nil {
		return field.NewPath(name)
	}
	return p.Child(name)
}

func indexed(p *field.Path, i int) *field.Path {
	if p == nil {
		return field.NewPath("").Index(i)
	}
	return p.Index(i)
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "unknown"
}

// describeGoType says what JSON a Go type wants, in a user's words.
func describeGoType(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean (true or false)"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "a base64 string"
		}
		return "a list"
	case reflect.Pointer:
		return describeGoType(t.Elem())
	}
	return t.String()
}

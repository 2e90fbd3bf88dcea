package config

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

var durationType = reflect.TypeFor[Duration]()

// checkShape walks a generic JSON value (as produced by json.Decoder with
// UseNumber) against the Go type t and reports the first key that t does
// not declare, or the first value of the wrong JSON type, naming its path.
// Field names match exactly (encoding/json would match case-insensitively).
// Keys are visited in sorted order so the reported error is deterministic.
func checkShape(path string, v any, t reflect.Type) error {
	if v == nil {
		return nil // null is the zero value for every field
	}
	if t == durationType {
		s, ok := v.(string)
		if !ok {
			return fieldErr(path, "must be a duration string such as \"30s\"")
		}
		if _, err := time.ParseDuration(s); err != nil {
			return fieldErr(path, fmt.Sprintf("%q is not a duration such as \"30s\"", s))
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		return checkShape(path, v, t.Elem())
	case reflect.Interface:
		return nil // opaque: any value accepted
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return fieldErr(path, "must be an object")
		}
		fields := jsonFields(t)
		for _, k := range slices.Sorted(maps.Keys(m)) {
			f, ok := fields[k]
			if !ok {
				return fieldErr(join(path, k), "unknown field")
			}
			if err := checkShape(join(path, k), m[k], f); err != nil {
				return err
			}
		}
		return nil
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return fieldErr(path, "must be an object")
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if err := checkShape(join(path, k), m[k], t.Elem()); err != nil {
				return err
			}
		}
		return nil
	case reflect.Slice:
		a, ok := v.([]any)
		if !ok {
			return fieldErr(path, "must be a list")
		}
		for i, e := range a {
			if err := checkShape(path+"["+strconv.Itoa(i)+"]", e, t.Elem()); err != nil {
				return err
			}
		}
		return nil
	case reflect.String:
		if _, ok := v.(string); !ok {
			return fieldErr(path, "must be a string")
		}
		return nil
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			return fieldErr(path, "must be true or false")
		}
		return nil
	case reflect.Int32:
		n, ok := v.(json.Number)
		if !ok {
			return fieldErr(path, "must be an integer")
		}
		if _, err := strconv.ParseInt(string(n), 10, 32); err != nil {
			return fieldErr(path, fmt.Sprintf("%s is not a 32-bit integer", n))
		}
		return nil
	case reflect.Uint32:
		n, ok := v.(json.Number)
		if !ok {
			return fieldErr(path, "must be an integer")
		}
		if _, err := strconv.ParseUint(string(n), 10, 32); err != nil {
			return fieldErr(path, fmt.Sprintf("%s is not a non-negative 32-bit integer", n))
		}
		return nil
	case reflect.Float32:
		n, ok := v.(json.Number)
		if !ok {
			return fieldErr(path, "must be a number")
		}
		f, err := strconv.ParseFloat(string(n), 64)
		if err != nil || math.Abs(f) > math.MaxFloat32 {
			return fieldErr(path, fmt.Sprintf("%s is not a number", n))
		}
		return nil
	}
	return fieldErr(path, "unsupported type "+t.String()) // programming error in types.go
}

// jsonFields maps each json tag name of struct type t to its field type.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := make(map[string]reflect.Type, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		out[name] = f.Type
	}
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

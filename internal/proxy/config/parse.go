package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	"sigs.k8s.io/yaml"
)

// The only apiVersion and kind accepted.
const (
	APIVersion = "kubeproxy.config.k8s.io/v1alpha1"
	Kind       = "KubeProxyConfiguration"
)

// Parse decodes one KubeProxyConfiguration YAML (or JSON) document strictly,
// validates it, and returns the effective configuration. Errors name the
// offending field path; a *FieldError can be recovered with errors.As.
func Parse(data []byte) (*Config, error) {
	raw, err := decode(data)
	if err != nil {
		return nil, err
	}
	if err := validate(raw); err != nil {
		return nil, err
	}
	return effective(raw), nil
}

// decode converts YAML to JSON (rejecting duplicate keys), checks the shape
// of every key and value against KubeProxyConfiguration, and then decodes.
func decode(data []byte) (*KubeProxyConfiguration, error) {
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("not a valid YAML document: %w", err)
	}
	var generic any
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	if err := dec.Decode(&generic); err != nil {
		return nil, fmt.Errorf("not a valid YAML document: %w", err)
	}
	if generic == nil {
		return nil, errors.New("empty configuration: expected a KubeProxyConfiguration document")
	}
	if _, ok := generic.(map[string]any); !ok {
		return nil, errors.New("configuration must be a YAML mapping, not a list or scalar")
	}
	if err := checkShape("", generic, reflect.TypeFor[KubeProxyConfiguration]()); err != nil {
		return nil, err
	}
	var raw KubeProxyConfiguration
	if err := json.Unmarshal(js, &raw); err != nil {
		// checkShape admits only values json.Unmarshal accepts; reaching
		// here is a bug in this package, not in the input.
		return nil, fmt.Errorf("decoding checked configuration: %w", err)
	}
	return &raw, nil
}

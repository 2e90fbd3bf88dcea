package objects

import (
	"encoding/json"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// MaxDataBytes is kube's size limit for the data of one ConfigMap or Secret.
const MaxDataBytes = 1 << 20

func validateConfigMap(cm *corev1.ConfigMap) field.ErrorList {
	errs := validateMeta(cm, true, apivalidation.NameIsDNSSubdomain)
	dataPath, binPath := field.NewPath("data"), field.NewPath("binaryData")
	size := 0
	for _, k := range sortedKeys(cm.Data) {
		errs = append(errs, validateDataKey(k, dataPath)...)
		size += len(k) + len(cm.Data[k])
	}
	for _, k := range sortedKeys(cm.BinaryData) {
		errs = append(errs, validateDataKey(k, binPath)...)
		if _, dup := cm.Data[k]; dup {
			errs = append(errs, field.Invalid(binPath.Key(k), k, "duplicate of key present in data"))
		}
		size += len(k) + len(cm.BinaryData[k])
	}
	if size > MaxDataBytes {
		errs = append(errs, field.TooLong(dataPath, "", MaxDataBytes))
	}
	return errs
}

func validateSecret(s *corev1.Secret) field.ErrorList {
	errs := validateMeta(s, true, apivalidation.NameIsDNSSubdomain)
	dataPath := field.NewPath("data")
	size := 0
	for _, k := range sortedKeys(s.Data) {
		errs = append(errs, validateDataKey(k, dataPath)...)
		size += len(s.Data[k])
	}
	if size > MaxDataBytes {
		errs = append(errs, field.TooLong(dataPath, "", MaxDataBytes))
	}
	require := func(keys ...string) {
		for _, k := range keys {
			if _, ok := s.Data[k]; !ok {
				errs = append(errs, field.Required(dataPath.Key(k), ""))
			}
		}
	}
	switch s.Type {
	case corev1.SecretTypeTLS:
		require(corev1.TLSCertKey, corev1.TLSPrivateKeyKey)
	case corev1.SecretTypeSSHAuth:
		require(corev1.SSHAuthPrivateKey)
	case corev1.SecretTypeBasicAuth:
		_, u := s.Data[corev1.BasicAuthUsernameKey]
		_, p := s.Data[corev1.BasicAuthPasswordKey]
		if !u && !p {
			errs = append(errs, field.Required(dataPath.Key(corev1.BasicAuthUsernameKey), ""))
		}
	case corev1.SecretTypeDockerConfigJson:
		require(corev1.DockerConfigJsonKey)
		if v, ok := s.Data[corev1.DockerConfigJsonKey]; ok && !json.Valid(v) {
			errs = append(errs, field.Invalid(dataPath.Key(corev1.DockerConfigJsonKey), field.OmitValueType{}, "must be valid JSON"))
		}
	}
	return errs
}

func validateDataKey(k string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsConfigMapKey(k) {
		errs = append(errs, field.Invalid(path.Key(k), k, msg))
	}
	return errs
}

// sortedKeys makes error order deterministic.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

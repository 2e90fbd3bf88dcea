package cni

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/utils"

	"github.com/fjord-net/fjord/internal/nodestate"
)

// Defaults for the optional config fields.
const (
	DefaultDataDir = "/var/lib/cni/networks"
	DefaultRunDir  = nodestate.DefaultRunDir
	// maxNameLen keeps "fjord/<name>" inside the kernel's interface alias limit.
	maxNameLen = 200
)

// Config is fjord's network configuration after validation and defaults.
type Config struct {
	CNIVersion string
	Name       string
	// RunDir holds node.json.
	RunDir string
	// DataDir holds one allocation directory per network name.
	DataDir string
	// MTU overrides node.json's MTU when not 0.
	MTU int
	// RawPrevResult is the runtime-injected prevResult, if any (parse with prevResult).
	RawPrevResult map[string]any
	// ValidAttachments is only set for GC.
	ValidAttachments []types.GCAttachment
}

// rawConfig is the wire form. Pointers tell "absent" from "zero".
type rawConfig struct {
	CNIVersion       string               `json:"cniVersion"`
	Name             string               `json:"name"`
	Type             string               `json:"type"`
	RunDir           *string              `json:"runDir"`
	DataDir          *string              `json:"dataDir"`
	MTU              *int                 `json:"mtu"`
	IPAM             map[string]any       `json:"ipam"`
	PrevResult       map[string]any       `json:"prevResult"`
	ValidAttachments []types.GCAttachment `json:"cni.dev/valid-attachments"`
}

// knownKeys are the keys fjord reads plus those the spec and its conventions let a
// runtime inject. Anything else is most likely a typo and is rejected.
var knownKeys = []string{
	"cniVersion", "name", "type", "runDir", "dataDir", "mtu", "ipam",
	"prevResult", "cni.dev/valid-attachments", "capabilities", "runtimeConfig",
	"args", "dns",
}

// ParseConfig decodes and validates a network configuration. Errors carry spec codes:
// 6 for undecodable JSON, 1 for an unsupported cniVersion, 7 for any invalid field
// (the message names the field).
func ParseConfig(data []byte) (*Config, *types.Error) {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(data, &keys); err != nil {
		return nil, errorf(types.ErrDecodingFailure, "network config: %v", err)
	}
	for k := range keys {
		if !slices.Contains(knownKeys, k) {
			return nil, errorf(types.ErrInvalidNetworkConfig, "%s: unknown field (known: %s)", k, strings.Join(sortedKnown(), ", "))
		}
	}
	var raw rawConfig
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fieldError(err)
	}
	return raw.validate()
}

func sortedKnown() []string {
	k := slices.Clone(knownKeys)
	sort.Strings(k)
	return k
}

// fieldError turns a JSON type error into a message naming the field.
func fieldError(err error) *types.Error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return errorf(types.ErrInvalidNetworkConfig, "%s: must be a %s, not a JSON %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
	}
	return errorf(types.ErrInvalidNetworkConfig, "network config: %v", err)
}

func jsonKind(goKind string) string {
	switch {
	case strings.HasPrefix(goKind, "int"), strings.HasPrefix(goKind, "uint"), strings.HasPrefix(goKind, "float"):
		return "number"
	case goKind == "string":
		return "string"
	case goKind == "slice":
		return "list"
	case goKind == "map", goKind == "struct":
		return "object"
	}
	return goKind
}

func (r *rawConfig) validate() (*Config, *types.Error) {
	if r.CNIVersion == "" {
		return nil, errorf(types.ErrInvalidNetworkConfig, "cniVersion: missing")
	}
	if !slices.Contains(SupportedVersions, r.CNIVersion) {
		return nil, errorf(types.ErrIncompatibleCNIVersion, "cniVersion: %q is not supported (fjord speaks %s)", r.CNIVersion, strings.Join(SupportedVersions, ", "))
	}
	if err := utils.ValidateNetworkName(r.Name); err != nil {
		return nil, errorf(types.ErrInvalidNetworkConfig, "name: %q: %s", r.Name, strings.TrimSuffix(err.Msg, ":"))
	}
	if len(r.Name) > maxNameLen {
		return nil, errorf(types.ErrInvalidNetworkConfig, "name: longer than %d characters", maxNameLen)
	}
	if r.Type != "fjord" && r.Type != "fjord-cni" {
		return nil, errorf(types.ErrInvalidNetworkConfig, "type: %q is not fjord's (want \"fjord\")", r.Type)
	}
	if len(r.IPAM) > 0 {
		return nil, errorf(types.ErrInvalidNetworkConfig, "ipam: fjord allocates pod addresses itself from the node's pod CIDR; remove the ipam section")
	}
	c := &Config{
		CNIVersion: r.CNIVersion, Name: r.Name, RunDir: DefaultRunDir, DataDir: DefaultDataDir,
		RawPrevResult: r.PrevResult, ValidAttachments: r.ValidAttachments,
	}
	var err *types.Error
	if c.RunDir, err = dirField("runDir", r.RunDir, DefaultRunDir); err != nil {
		return nil, err
	}
	if c.DataDir, err = dirField("dataDir", r.DataDir, DefaultDataDir); err != nil {
		return nil, err
	}
	if r.MTU != nil {
		c.MTU = *r.MTU
		if c.MTU != 0 && (c.MTU < 576 || c.MTU > 65535) {
			return nil, errorf(types.ErrInvalidNetworkConfig, "mtu: %d is outside 576..65535 (0 means node.json's MTU)", c.MTU)
		}
	}
	return c, nil
}

// dirField validates an optional absolute directory path.
func dirField(name string, v *string, def string) (string, *types.Error) {
	if v == nil {
		return def, nil
	}
	p := *v
	switch {
	case p == "":
		return "", errorf(types.ErrInvalidNetworkConfig, "%s: must not be empty (omit it for %s)", name, def)
	case !filepath.IsAbs(p):
		return "", errorf(types.ErrInvalidNetworkConfig, "%s: %q is not an absolute path", name, p)
	case strings.ContainsRune(p, 0):
		return "", errorf(types.ErrInvalidNetworkConfig, "%s: contains a NUL byte", name)
	}
	return filepath.Clean(p), nil
}

// allocDir is where this network's allocations live.
func (c *Config) allocDir() string { return filepath.Join(c.DataDir, c.Name) }

// ConfList renders the network configuration list the agent installs in the CNI
// config directory: fjord followed by portmap, at spec version 1.1.0.
func ConfList(name, runDir, dataDir string, mtu int) ([]byte, error) {
	return ConfListVersion("1.1.0", name, runDir, dataDir, mtu)
}

// ConfListVersion is ConfList at another spec version (1.0.0 for nodes whose portmap
// is Debian's, which stops at 1.0.0).
func ConfListVersion(cniVersion, name, runDir, dataDir string, mtu int) ([]byte, error) {
	fjord := map[string]any{"type": "fjord", "runDir": runDir, "dataDir": dataDir, "mtu": mtu}
	plugin, _ := json.Marshal(map[string]any{"cniVersion": cniVersion, "name": name, "type": "fjord", "runDir": runDir, "dataDir": dataDir, "mtu": mtu})
	if _, err := ParseConfig(plugin); err != nil {
		return nil, fmt.Errorf("fjord CNI config: %s", err.Msg)
	}
	list := map[string]any{
		"cniVersion": cniVersion,
		"name":       name,
		"plugins": []any{
			fjord,
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(list); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

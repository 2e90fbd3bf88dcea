// Package deploy holds fjord's installation manifest (fjord.yaml), embedded so the lab
// and the tests apply exactly what a user applies.
package deploy

import _ "embed"

// Manifest is deploy/fjord.yaml.
//
//go:embed fjord.yaml
var Manifest []byte

// BGPManifest is deploy/fjord-bgp-crds.yaml: the BGP objects' CRDs and the agent's
// right to read them (bgp mode).
//
//go:embed fjord-bgp-crds.yaml
var BGPManifest []byte

// Image is the image the manifest runs; `make image` builds it.
const Image = "fjord.dev/fjord:dev"

// Package deploy holds fjord's installation manifest (fjord.yaml), embedded so the lab
// and the tests apply exactly what a user applies.
package deploy

import _ "embed"

// Manifest is deploy/fjord.yaml.
//
//go:embed fjord.yaml
var Manifest []byte

// Image is the image the manifest runs; `make image` builds it.
const Image = "fjord.dev/fjord:dev"

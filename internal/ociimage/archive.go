package ociimage

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Image describes a written image tarball.
type Image struct {
	// Tags are the references it is imported under, sorted.
	Tags []string
	// ID is the digest of the image config ("sha256:..."), what `ctr images
	// ls` and `crictl images` show as the image ID.
	ID string
	// DiffID is the digest of the uncompressed layer.
	DiffID string
	// Size is the tarball's size in bytes.
	Size int64
}

// Write plans the spec against the host and writes the image to path as a
// docker-archive tarball, atomically (a temporary file renamed into place).
func Write(path string, s Spec) (Image, error) {
	entries, err := Plan(s, HostFS{})
	if err != nil {
		return Image{}, err
	}
	return writeArchive(path, s, entries)
}

// config is the image config for a layer with the given diff ID.
func config(s Spec, diffID v1.Hash) v1.ConfigFile {
	return v1.ConfigFile{
		Architecture: runtime.GOARCH,
		OS:           "linux",
		Created:      v1.Time{Time: epoch},
		Config: v1.Config{
			Entrypoint: s.Entrypoint,
			Cmd:        s.Cmd,
			Env:        s.env(),
			WorkingDir: s.WorkingDir,
			User:       s.User,
		},
		RootFS:  v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{diffID}},
		History: []v1.History{{Created: v1.Time{Time: epoch}, CreatedBy: "fjord internal/ociimage"}},
	}
}

func writeArchive(path string, s Spec, entries []Entry) (img Image, err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Image{}, err
	}
	// The layer goes to a temporary file first: the archive's tar header needs
	// its size, and its name its digest.
	layer, err := os.CreateTemp(dir, ".layer-*.tar")
	if err != nil {
		return Image{}, err
	}
	defer func() {
		layer.Close()
		os.Remove(layer.Name())
	}()
	h := sha256.New()
	if err := writeLayer(io.MultiWriter(layer, h), entries); err != nil {
		return Image{}, fmt.Errorf("image %s: writing the layer: %w", s.Name(), err)
	}
	layerSize, err := layer.Seek(0, io.SeekCurrent)
	if err != nil {
		return Image{}, err
	}
	diffID := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
	cfg, err := json.Marshal(config(s, diffID))
	if err != nil {
		return Image{}, err
	}
	cfgHash := sha256.Sum256(cfg)
	cfgHex := hex.EncodeToString(cfgHash[:])
	tags := append([]string(nil), s.Tags...)
	sort.Strings(tags)
	layerName := diffID.Hex + "/layer.tar"
	manifest, err := json.Marshal(tarball.Manifest{{Config: cfgHex + ".json", RepoTags: tags, Layers: []string{layerName}}})
	if err != nil {
		return Image{}, err
	}

	out, err := os.CreateTemp(dir, ".image-*.tar")
	if err != nil {
		return Image{}, err
	}
	defer func() {
		if err != nil {
			out.Close()
			os.Remove(out.Name())
		}
	}()
	tw := tar.NewWriter(out)
	put := func(name string, size int64, r io.Reader) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: size, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := io.Copy(tw, r)
		return err
	}
	if _, err = layer.Seek(0, io.SeekStart); err != nil {
		return Image{}, err
	}
	if err = put(cfgHex+".json", int64(len(cfg)), bytes.NewReader(cfg)); err != nil {
		return Image{}, err
	}
	if err = put(layerName, layerSize, io.LimitReader(layer, layerSize)); err != nil {
		return Image{}, err
	}
	if err = put("manifest.json", int64(len(manifest)), bytes.NewReader(manifest)); err != nil {
		return Image{}, err
	}
	if err = tw.Close(); err != nil {
		return Image{}, err
	}
	size, err := out.Seek(0, io.SeekCurrent)
	if err != nil {
		return Image{}, err
	}
	if err = out.Chmod(0o644); err != nil {
		return Image{}, err
	}
	if err = out.Close(); err != nil {
		return Image{}, err
	}
	if err = os.Rename(out.Name(), path); err != nil {
		return Image{}, err
	}
	return Image{Tags: tags, ID: "sha256:" + cfgHex, DiffID: diffID.String(), Size: size}, nil
}

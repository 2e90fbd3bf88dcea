package ociimage

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"sort"
)

// formatVersion changes whenever the bytes written for the same inputs would
// change, so Ensure never reuses a tarball written differently.
const formatVersion = "fjord-ociimage-1"

// inputKey hashes everything the tarball depends on: the planned entries
// (host files by path, size and modification time), the config fields, the
// tags and the architecture.
func inputKey(s Spec, entries []Entry) (string, error) {
	type hostFile struct {
		Size    int64
		ModTime int64
	}
	type rec struct {
		Path, Target, Src string
		Kind              EntryKind
		Mode              uint32
		Content           string
		Host              *hostFile
	}
	recs := make([]rec, 0, len(entries))
	for _, e := range entries {
		r := rec{Path: e.Path, Kind: e.Kind, Mode: uint32(e.Mode), Target: e.Target, Src: e.Src}
		if e.Src != "" {
			fi, err := os.Stat(e.Src)
			if err != nil {
				return "", err
			}
			r.Host = &hostFile{Size: fi.Size(), ModTime: fi.ModTime().UnixNano()}
		} else if e.Kind == KindFile {
			sum := sha256.Sum256(e.Content)
			r.Content = hex.EncodeToString(sum[:])
		}
		recs = append(recs, r)
	}
	tags := append([]string(nil), s.Tags...)
	sort.Strings(tags)
	data, err := json.Marshal(struct {
		Format, Arch               string
		Tags, Entrypoint, Cmd, Env []string
		WorkingDir, User           string
		Entries                    []rec
	}{formatVersion, runtime.GOARCH, tags, s.Entrypoint, s.Cmd, s.env(), s.WorkingDir, s.User, recs})
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// inputsRecord is kept next to a tarball (FILE.inputs) by Ensure.
type inputsRecord struct {
	Key   string
	Image Image
}

// Ensure is Write, unless path already holds the image written from the same
// inputs (recorded in path.inputs by an earlier Ensure); built says which.
func Ensure(path string, s Spec) (img Image, built bool, err error) {
	entries, err := Plan(s, HostFS{})
	if err != nil {
		return Image{}, false, err
	}
	key, err := inputKey(s, entries)
	if err != nil {
		return Image{}, false, fmt.Errorf("image %s: %w", s.Name(), err)
	}
	recPath := path + ".inputs"
	if data, err := os.ReadFile(recPath); err == nil {
		var rec inputsRecord
		if json.Unmarshal(data, &rec) == nil && rec.Key == key {
			if fi, err := os.Stat(path); err == nil && fi.Size() == rec.Image.Size {
				return rec.Image, false, nil
			}
		}
	}
	img, err = writeArchive(path, s, entries)
	if err != nil {
		return Image{}, false, err
	}
	data, err := json.Marshal(inputsRecord{Key: key, Image: img})
	if err != nil {
		return Image{}, false, err
	}
	if err := os.WriteFile(recPath, data, 0o644); err != nil {
		return Image{}, false, err
	}
	return img, true, nil
}

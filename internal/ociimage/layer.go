package ociimage

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"
)

// epoch is the modification time of every entry and the image's creation
// time: fixed, so the same inputs give the same bytes.
var epoch = time.Unix(0, 0).UTC()

// tarMode converts permission bits to a tar header mode.
func tarMode(m fs.FileMode) int64 {
	mode := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}

// writeLayer writes the entries, in order, as an uncompressed tar owned by
// root with fixed times. Host files are read as they are written; one that
// changes size meanwhile is an error rather than a corrupt layer.
func writeLayer(w io.Writer, entries []Entry) error {
	tw := tar.NewWriter(w)
	for _, e := range entries {
		hdr := &tar.Header{
			Name:    strings.TrimPrefix(e.Path, "/"),
			Mode:    tarMode(e.Mode),
			ModTime: epoch,
			Format:  tar.FormatPAX,
		}
		switch e.Kind {
		case KindDir:
			hdr.Typeflag, hdr.Name = tar.TypeDir, hdr.Name+"/"
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
		case KindSymlink:
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, e.Target
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
		case KindFile:
			hdr.Typeflag = tar.TypeReg
			if err := writeFileEntry(tw, hdr, e); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

func writeFileEntry(tw *tar.Writer, hdr *tar.Header, e Entry) error {
	if e.Src == "" {
		hdr.Size = int64(len(e.Content))
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := io.Copy(tw, bytes.NewReader(e.Content))
		return err
	}
	f, err := os.Open(e.Src)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	hdr.Size = fi.Size()
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	n, err := io.Copy(tw, io.LimitReader(f, hdr.Size))
	if err != nil {
		return fmt.Errorf("copying %s to %s: %w", e.Src, e.Path, err)
	}
	if n != hdr.Size {
		return fmt.Errorf("copying %s to %s: it shrank from %d to %d bytes while being read", e.Src, e.Path, hdr.Size, n)
	}
	return nil
}

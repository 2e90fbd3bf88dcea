package kubebuild

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// A stamp records what a binary without a usable --version was built from: a
// key (hash of the inputs) and the size and modification time the binary had
// when it was written, so a binary replaced by hand is not mistaken for ours.

// inputKey hashes the inputs of a build into a stamp key.
func inputKey(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s\n", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

type stamp struct {
	key     string
	size    int64
	modTime int64 // UnixNano
}

func (s stamp) String() string { return fmt.Sprintf("%s\n%d %d\n", s.key, s.size, s.modTime) }

func parseStamp(text string) (stamp, error) {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if len(lines) != 2 || len(lines[0]) != 64 {
		return stamp{}, fmt.Errorf("stamp: want 2 lines (key, size mtime), got %q", text)
	}
	f := strings.Fields(lines[1])
	if len(f) != 2 {
		return stamp{}, fmt.Errorf("stamp: want \"size mtime\", got %q", lines[1])
	}
	size, err1 := strconv.ParseInt(f[0], 10, 64)
	mt, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil {
		return stamp{}, fmt.Errorf("stamp: bad numbers in %q", lines[1])
	}
	return stamp{key: lines[0], size: size, modTime: mt}, nil
}

// stampOf describes the file at bin with key.
func stampOf(bin, key string) (stamp, error) {
	fi, err := os.Stat(bin)
	if err != nil {
		return stamp{}, err
	}
	return stamp{key: key, size: fi.Size(), modTime: fi.ModTime().UnixNano()}, nil
}

// stampCurrent reports whether the stamp at path says bin was built with key
// and bin is still the file that was written.
func stampCurrent(path, bin, key string) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	want, err := parseStamp(string(data))
	if err != nil {
		return false
	}
	have, err := stampOf(bin, key)
	return err == nil && have == want
}

// writeStamp records that bin was built with key.
func writeStamp(path, bin, key string) error {
	s, err := stampOf(bin, key)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, []byte(s.String()), 0o644)
}

// writeFileAtomic writes data to path through a temporary file and a rename,
// so a reader never sees half a file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := fmt.Sprintf("%s.tmp%d", path, os.Getpid())
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

package objects

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Decoded is one decoded object and the input it came from.
type Decoded struct {
	Source string // file path, or "stdin"
	Object Object
}

// StdinName is how Decoded.Source and messages name standard input ("-f -").
const StdinName = "stdin"

// DecodeFiles decodes what `-f` names, in order: "-" is stdin, a file is read whatever
// its name, a directory contributes its *.yaml, *.yml and *.json files in lexical order
// (its subdirectories too when recursive). Like Decode it goes on past errors and
// returns everything it could decode with every problem joined.
func (reg Registry) DecodeFiles(paths []string, recursive bool, stdin io.Reader) ([]Decoded, error) {
	var out []Decoded
	var errs []error
	decode := func(r io.Reader, source string) {
		objs, err := reg.Decode(r, source)
		for _, o := range objs {
			out = append(out, Decoded{Source: source, Object: o})
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	stdinUsed := false
	for _, p := range paths {
		if p == "-" {
			if stdinUsed {
				errs = append(errs, errors.New("stdin (-) may be given only once"))
				continue
			}
			stdinUsed = true
			if stdin == nil {
				stdin = strings.NewReader("")
			}
			decode(stdin, StdinName)
			continue
		}
		files, err := manifestFiles(p, recursive)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, name := range files {
			f, err := os.Open(name)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			decode(f, name)
			f.Close()
		}
	}
	return out, errors.Join(errs...)
}

// manifestFiles lists the files a -f argument stands for.
func manifestFiles(path string, recursive bool) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	var files []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != path && !recursive {
				return filepath.SkipDir
			}
			return nil
		}
		switch strings.ToLower(filepath.Ext(p)) {
		case ".yaml", ".yml", ".json":
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		hint := ""
		if !recursive {
			hint = " (use -R for subdirectories)"
		}
		return nil, fmt.Errorf("%s: no .yaml, .yml or .json files%s", path, hint)
	}
	return files, nil
}

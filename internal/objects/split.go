package objects

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"

	"sigs.k8s.io/yaml"
)

// rawDoc is one document of an input, converted to JSON, or the reason it could not be.
type rawDoc struct {
	json []byte
	err  error
}

// splitDocuments cuts an input into its non-empty documents. Input starting with '{' or
// '[' is first read as a stream of JSON values; anything else (or JSON that does not
// parse) is read as YAML documents separated by "---" lines.
func splitDocuments(data []byte) []rawDoc {
	if t := bytes.TrimSpace(data); len(t) > 0 && (t[0] == '{' || t[0] == '[') {
		if docs, ok := splitJSON(data); ok {
			return docs
		}
	}
	return splitYAML(data)
}

func splitJSON(data []byte) ([]rawDoc, bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var docs []rawDoc
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return docs, true
		}
		if err != nil {
			return nil, false
		}
		docs = append(docs, rawDoc{json: raw})
	}
}

// splitYAML follows the separator rule of k8s.io/apimachinery's YAMLReader (a line
// starting with "---" and followed only by blanks or a comment), and also tracks line
// numbers so that YAML syntax errors point at the line in the file.
func splitYAML(data []byte) []rawDoc {
	var docs []rawDoc
	var cur bytes.Buffer
	start, line := 1, 0
	flush := func() {
		if len(bytes.TrimSpace(cur.Bytes())) > 0 {
			js, err := yaml.YAMLToJSONStrict(cur.Bytes())
			switch {
			case err != nil:
				docs = append(docs, rawDoc{err: shiftYAMLLines(err, start-1)})
			case string(bytes.TrimSpace(js)) != "null": // only comments
				docs = append(docs, rawDoc{json: js})
			}
		}
		cur.Reset()
	}
	for rest := data; len(rest) > 0; {
		var l []byte
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			l, rest = rest[:i+1], rest[i+1:]
		} else {
			l, rest = rest, nil
		}
		line++
		if isSeparator(l) {
			flush()
			start = line + 1
			continue
		}
		cur.Write(l)
	}
	flush()
	return docs
}

func isSeparator(line []byte) bool {
	if !bytes.HasPrefix(line, []byte("---")) {
		return false
	}
	rest := bytes.TrimSpace(line[3:])
	return len(rest) == 0 || rest[0] == '#'
}

var yamlLineRE = regexp.MustCompile(`line (\d+)`)

// shiftYAMLLines rewrites "line N" in a YAML error from document-relative to file-relative.
func shiftYAMLLines(err error, offset int) error {
	msg := yamlLineRE.ReplaceAllStringFunc(err.Error(), func(m string) string {
		n, _ := strconv.Atoi(m[len("line "):])
		return fmt.Sprintf("line %d", n+offset)
	})
	return errors.New(msg)
}

package nginxconf

import (
	"fmt"
	"strings"
)

// LogFormat is a compiled nginx log format. It is immutable and safe for
// concurrent use.
type LogFormat struct {
	src   string
	parts []part
}

// part is either literal text or a variable.
type part struct {
	lit string
	v   varFunc // nil for literal text
}

// Compile parses an nginx log format: literal text with $name or ${name}
// variables (names are letters, digits and underscores). An unknown
// variable, a "$" without a name or an unterminated "${" is an error.
func Compile(format string) (*LogFormat, error) {
	lf := &LogFormat{src: format}
	var lit strings.Builder
	for i := 0; i < len(format); {
		c := format[i]
		if c != '$' {
			lit.WriteByte(c)
			i++
			continue
		}
		var name string
		j := i + 1
		if j < len(format) && format[j] == '{' {
			end := strings.IndexByte(format[j:], '}')
			if end < 0 {
				return nil, fmt.Errorf("unterminated ${ at offset %d", i)
			}
			name = format[j+1 : j+end]
			if !isVarName(name) {
				return nil, fmt.Errorf("invalid variable name %q at offset %d", name, i)
			}
			j += end + 1
		} else {
			for j < len(format) && isNameByte(format[j]) {
				j++
			}
			name = format[i+1 : j]
			if name == "" {
				return nil, fmt.Errorf("$ without a variable name at offset %d", i)
			}
		}
		fn, ok := lookupVar(name)
		if !ok {
			return nil, fmt.Errorf("unknown variable $%s", name)
		}
		if lit.Len() > 0 {
			lf.parts = append(lf.parts, part{lit: lit.String()})
			lit.Reset()
		}
		lf.parts = append(lf.parts, part{v: fn})
		i = j
	}
	if lit.Len() > 0 {
		lf.parts = append(lf.parts, part{lit: lit.String()})
	}
	return lf, nil
}

// String returns the source format.
func (lf *LogFormat) String() string { return lf.src }

// Render formats one log line (without a trailing newline).
func (lf *LogFormat) Render(v Vars) string {
	return string(lf.Append(make([]byte, 0, 256), &v))
}

// Append appends one log line (without a trailing newline) to b, so that
// a caller with a reusable buffer renders without allocating.
func (lf *LogFormat) Append(b []byte, v *Vars) []byte {
	for _, p := range lf.parts {
		if p.v == nil {
			b = append(b, p.lit...)
			continue
		}
		b = p.v(b, v)
	}
	return b
}

func isNameByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isVarName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isNameByte(s[i]) {
			return false
		}
	}
	return true
}

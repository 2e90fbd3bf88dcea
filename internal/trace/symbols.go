package trace

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// Symbols maps kernel text addresses to function names (from /proc/kallsyms).
type Symbols struct {
	addrs []uint64
	names []string
}

// ParseKallsyms reads /proc/kallsyms, keeping text symbols (types t and T).
func ParseKallsyms(r io.Reader) (*Symbols, error) {
	type sym struct {
		a uint64
		n string
	}
	var syms []sym
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || (f[1] != "t" && f[1] != "T") {
			continue
		}
		a, err := strconv.ParseUint(f[0], 16, 64)
		if err != nil || a == 0 {
			continue
		}
		syms = append(syms, sym{a, f[2]})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(syms) == 0 {
		return nil, fmt.Errorf("no text symbols (are kernel addresses hidden? kernel.kptr_restrict)")
	}
	sort.Slice(syms, func(i, j int) bool { return syms[i].a < syms[j].a })
	s := &Symbols{}
	for _, x := range syms {
		s.addrs = append(s.addrs, x.a)
		s.names = append(s.names, x.n)
	}
	return s, nil
}

// Lookup returns "function+0xoffset" for an address ("" when below every symbol).
func (s *Symbols) Lookup(addr uint64) string {
	if s == nil {
		return ""
	}
	i := sort.Search(len(s.addrs), func(i int) bool { return s.addrs[i] > addr }) - 1
	if i < 0 {
		return ""
	}
	return fmt.Sprintf("%s+0x%x", s.names[i], addr-s.addrs[i])
}

// Function is Lookup without the offset.
func (s *Symbols) Function(addr uint64) string {
	f, _, _ := strings.Cut(s.Lookup(addr), "+")
	return f
}

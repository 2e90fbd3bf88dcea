package nginxconf

import (
	"fmt"
	"strconv"
	"strings"
)

// parseSize parses nginx size syntax: bytes, or a number followed by k/K,
// m/M or g/G. "0" means unlimited for proxy-body-size.
func parseSize(v string) (int64, error) {
	errBad := fmt.Errorf("is not a size (bytes, or a number with k, m or g, such as 512k or 1m)")
	if v == "" {
		return 0, errBad
	}
	mult := int64(1)
	num := v
	switch v[len(v)-1] {
	case 'k', 'K':
		mult, num = 1<<10, v[:len(v)-1]
	case 'm', 'M':
		mult, num = 1<<20, v[:len(v)-1]
	case 'g', 'G':
		mult, num = 1<<30, v[:len(v)-1]
	}
	if num == "" || num[0] < '0' || num[0] > '9' {
		return 0, errBad
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, errBad
	}
	return n * mult, nil
}

// HeadBuffers is large-client-header-buffers: Count buffers of Size bytes.
type HeadBuffers struct {
	Count, Size int
}

// parseHeadBuffers parses "number size", e.g. "4 8k".
func parseHeadBuffers(v string) (HeadBuffers, error) {
	errBad := fmt.Errorf("is not a buffer count and size, such as \"4 8k\"")
	f := strings.Fields(v)
	if len(f) != 2 {
		return HeadBuffers{}, errBad
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n < 1 || n > 1024 {
		return HeadBuffers{}, errBad
	}
	size, err := parseSize(f[1])
	if err != nil || size < 1 || size > 1<<20 {
		return HeadBuffers{}, errBad
	}
	return HeadBuffers{Count: n, Size: int(size)}, nil
}

// parseBufferSize parses a buffer size: an nginx size from 1 byte to 1m.
func parseBufferSize(v string) (int, error) {
	n, err := parseSize(v)
	if err != nil || n < 1 || n > 1<<20 {
		return 0, fmt.Errorf("is not a buffer size from 1 to 1m (bytes, or a number with k or m)")
	}
	return int(n), nil
}

package nginxconf

import (
	"fmt"
	"strconv"
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

package nginxconf

import (
	"fmt"
	"time"
)

// parseTime parses nginx time syntax: a plain number is seconds; otherwise
// one or more number+unit parts, largest unit first, as in "1m30s". Units:
// ms, s, m, h, d, w, M (30 days), y (365 days). The last part may omit its
// unit (seconds), as nginx allows.
func parseTime(v string) (time.Duration, error) {
	errBad := fmt.Errorf("is not a time (seconds, or nginx units such as 500ms, 5s, 1m, 1h)")
	if v == "" {
		return 0, errBad
	}
	var total time.Duration
	lastUnit := time.Duration(1<<63 - 1)
	for i := 0; i < len(v); {
		start := i
		var n int64
		for i < len(v) && v[i] >= '0' && v[i] <= '9' {
			n = n*10 + int64(v[i]-'0')
			if n > 1<<40 {
				return 0, errBad
			}
			i++
		}
		if i == start {
			return 0, errBad
		}
		unit := time.Second
		if i < len(v) {
			switch {
			case len(v)-i >= 2 && v[i:i+2] == "ms":
				unit, i = time.Millisecond, i+2
			default:
				switch v[i] {
				case 's':
					unit = time.Second
				case 'm':
					unit = time.Minute
				case 'h':
					unit = time.Hour
				case 'd':
					unit = 24 * time.Hour
				case 'w':
					unit = 7 * 24 * time.Hour
				case 'M':
					unit = 30 * 24 * time.Hour
				case 'y':
					unit = 365 * 24 * time.Hour
				default:
					return 0, errBad
				}
				i++
			}
		}
		if unit >= lastUnit {
			return 0, errBad
		}
		lastUnit = unit
		d := time.Duration(n) * unit
		if d/unit != time.Duration(n) || total+d < total {
			return 0, errBad
		}
		total += d
	}
	return total, nil
}

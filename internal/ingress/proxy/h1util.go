package proxy

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"
)

func addrPortOf(a net.Addr) (netip.AddrPort, error) {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort(), nil
	case nil:
		return netip.AddrPort{}, errors.New("no address")
	}
	return netip.ParseAddrPort(a.String())
}

func itoa(n int) string { return strconv.Itoa(n) }

// dateCache formats the Date header once per second per connection.
type dateCache struct {
	sec int64
	buf []byte
}

func (d *dateCache) get(now time.Time) []byte {
	if s := now.Unix(); s != d.sec || d.buf == nil {
		d.sec = s
		d.buf = now.UTC().AppendFormat(d.buf[:0], "Mon, 02 Jan 2006 15:04:05 GMT")
	}
	return d.buf
}

// randomID fills b (32 bytes) with random hex, like nginx's $request_id,
// and returns it.
func randomID(b []byte) []byte {
	var r [16]byte
	rand.Read(r[:])
	hex.Encode(b, r[:])
	return b[:32]
}

func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return t
	}
	return "status code " + strconv.Itoa(code)
}

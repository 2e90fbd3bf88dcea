package cni

import (
	"errors"
	"os"

	"github.com/fjord-net/fjord/internal/ipam/diskstore"
)

// openExistingStore opens dir's store, or returns nil if dir does not exist, so DEL
// and GC never create an allocation directory.
func openExistingStore(dir string) (*diskstore.Store, error) {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return diskstore.Open(dir)
}

package probe

import "os"

func openNS(path string) (*os.File, error) { return os.Open(path) }

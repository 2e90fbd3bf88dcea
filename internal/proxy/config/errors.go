package config

// FieldError is a problem with one field of a configuration document.
type FieldError struct {
	// Path is the dotted field path, e.g. "ipvs.scheduler" or
	// "nodePortAddresses[1]".
	Path string
	// Problem says what is wrong, e.g. "unknown field".
	Problem string
}

func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Problem
	}
	return e.Path + ": " + e.Problem
}

func fieldErr(path, problem string) error {
	return &FieldError{Path: path, Problem: problem}
}

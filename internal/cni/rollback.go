package cni

// undoStack collects the inverse of each step ADD has taken; run executes them in
// reverse order. Undo steps ignore errors: they clean up after a failure that is
// already being reported.
type undoStack []func()

func (u *undoStack) push(f func()) { *u = append(*u, f) }

func (u *undoStack) run() {
	for i := len(*u) - 1; i >= 0; i-- {
		(*u)[i]()
	}
	*u = nil
}

package benchkit

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// NSWorker runs jobs on one OS thread that sits in a network namespace. Sockets it
// creates belong to that namespace for their whole life, whichever thread uses them.
type NSWorker struct {
	Name string
	jobs chan func()
	done chan struct{}
}

// NewNSWorker starts a worker in the named namespace (/run/netns/NAME).
func NewNSWorker(name string) (*NSWorker, error) {
	w := &NSWorker{Name: name, jobs: make(chan func()), done: make(chan struct{})}
	errc := make(chan error, 1)
	go func() {
		defer close(w.done)
		// Never unlocked: when this goroutine ends, its thread (in a foreign
		// namespace) ends with it instead of returning to Go's pool. Processes
		// started from this thread get Pdeathsig from it, so start them elsewhere.
		runtime.LockOSThread()
		h, err := netns.GetFromName(name)
		if err == nil {
			err = netns.Set(h)
			_ = h.Close()
		}
		errc <- err
		if err != nil {
			return
		}
		for job := range w.jobs {
			job()
		}
	}()
	if err := <-errc; err != nil {
		return nil, fmt.Errorf("entering %s: %w", name, err)
	}
	return w, nil
}

// Run runs f on the worker's thread and waits for it.
func (w *NSWorker) Run(f func()) {
	ran := make(chan struct{})
	w.jobs <- func() { f(); close(ran) }
	<-ran
}

// Close ends the worker and its thread.
func (w *NSWorker) Close() { close(w.jobs); <-w.done }

package syncrunner

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("never: %s", what)
}

func TestFirstSyncIsFullAndBurstsCoalesce(t *testing.T) {
	r := New(50*time.Millisecond, time.Hour)
	var calls, fulls, seen atomic.Int64
	var state atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx, func(full bool) error {
		calls.Add(1)
		if full {
			fulls.Add(1)
		}
		seen.Store(state.Load())
		return nil
	})
	waitFor(t, "first sync", func() bool { return calls.Load() == 1 })
	if fulls.Load() != 1 {
		t.Fatal("the first sync must be full")
	}
	for i := 1; i <= 1000; i++ {
		state.Store(int64(i))
		r.Kick()
	}
	waitFor(t, "the last change is synced", func() bool { return seen.Load() == 1000 })
	if n := calls.Load(); n > 100 {
		t.Fatalf("1000 kicks caused %d syncs; they must coalesce", n)
	}
	if fulls.Load() != 1 {
		t.Fatalf("kicks must not cause full syncs (%d)", fulls.Load())
	}
}

func TestFailedSyncIsRetriedAsFull(t *testing.T) {
	r := New(0, time.Hour)
	var calls atomic.Int64
	var lastFull atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx, func(full bool) error {
		n := calls.Add(1)
		lastFull.Store(full)
		if n == 2 {
			return errors.New("nft failed")
		}
		return nil
	})
	waitFor(t, "first sync", func() bool { return calls.Load() == 1 })
	r.Kick()
	waitFor(t, "retry after the failure", func() bool { return calls.Load() == 3 })
	if !lastFull.Load() {
		t.Fatal("a retry after a failure must be a full sync")
	}
}

func TestPeriodicResyncIsFull(t *testing.T) {
	r := New(0, 20*time.Millisecond)
	var fulls atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx, func(full bool) error {
		if full {
			fulls.Add(1)
		}
		return nil
	})
	waitFor(t, "periodic full resyncs", func() bool { return fulls.Load() >= 3 })
}

func TestNotReadyIsNotASync(t *testing.T) {
	r := New(time.Hour, time.Hour) // a real sync would hold the next one back an hour
	var calls atomic.Int64
	var secondFull atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx, func(full bool) error {
		if calls.Add(1) == 1 {
			return ErrNotReady
		}
		secondFull.Store(full)
		return nil
	})
	waitFor(t, "first attempt", func() bool { return calls.Load() == 1 })
	r.Kick()
	waitFor(t, "the sync after the kick", func() bool { return calls.Load() == 2 })
	if !secondFull.Load() {
		t.Fatal("the first real sync must still be full")
	}
}

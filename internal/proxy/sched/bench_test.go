package sched

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// benchPick measures Pick over n endpoints with weights 1..4 (lc and wlc
// report Done right away, so their load stays flat).
func benchPick(b *testing.B, name string, n int) {
	e := eps(n)
	for i := range e {
		e[i].Weight = 1 + i%4
	}
	s := mustNew(b, name, e, Options{Rand: rand.NewPCG(1, 2)})
	lc, isLC := s.(ConnTracker)
	flows := make([]Flow, 1024)
	for i := range flows {
		flows[i] = flow(i)
	}
	for i := 0; b.Loop(); i++ {
		ep, ok := s.Pick(flows[i%len(flows)])
		if !ok {
			b.Fatal("no endpoint")
		}
		if isLC {
			lc.Done(ep)
		}
	}
}

func BenchmarkPick(b *testing.B) {
	for _, name := range Names() {
		b.Run(name+"/10", func(b *testing.B) { benchPick(b, name, 10) })
		b.Run(name+"/1000", func(b *testing.B) { benchPick(b, name, 1000) })
	}
}

// BenchmarkMaglevBuild measures building a default-size (65537) table.
func BenchmarkMaglevBuild(b *testing.B) {
	for _, n := range []int{10, 1000} {
		e := eps(n)
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			for b.Loop() {
				if _, err := NewMaglev(e, DefaultMaglevTableSize, false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

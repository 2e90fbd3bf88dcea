package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ---------------------------------------------------------------------------------
// Agent memory

type rssRow struct {
	Lab, Mode string
	RSS, HWM  []float64 // MiB, per node n1..n3
}

// agentRSS reads VmRSS and VmHWM of the lab's agents, found by the marker the lab sets.
func agentRSS(l lab) (rssRow, error) {
	row := rssRow{Lab: l.Name, Mode: l.Mode}
	entries, _ := os.ReadDir("/proc")
	found := map[int][2]float64{}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		vars := strings.Split(string(env), "\x00")
		if !slices.Contains(vars, "FJORD_LAB="+l.Name) {
			continue
		}
		for _, v := range vars {
			if n, ok := strings.CutPrefix(v, "FJORD_LAB_PROC=agent-n"); ok {
				i, _ := strconv.Atoi(n)
				rss, hwm := procStatus(e.Name(), "VmRSS"), procStatus(e.Name(), "VmHWM")
				if rss > 0 {
					found[i] = [2]float64{rss, hwm}
				}
			}
		}
	}
	for i := 1; i <= 3; i++ {
		v, ok := found[i]
		if !ok {
			return row, fmt.Errorf("lab %s: agent-n%d not found in /proc", l.Name, i)
		}
		row.RSS, row.HWM = append(row.RSS, v[0]), append(row.HWM, v[1])
	}
	return row, nil
}

// procStatus returns a /proc/PID/status field in MiB (0 if absent).
func procStatus(pid, field string) float64 {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "status"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(v)
			if len(f) >= 1 {
				kb, _ := strconv.ParseFloat(f[0], 64)
				return kb / 1024
			}
		}
	}
	return 0
}

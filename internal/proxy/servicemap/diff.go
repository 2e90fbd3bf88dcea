package servicemap

import "slices"

// Diff compares two Maps by key. changed lists the keys that are new in
// next or whose ServicePort differs; removed lists the keys only in prev.
// Both are sorted.
func Diff(prev, next Map) (changed, removed []string) {
	for k, sp := range next.Ports {
		old, ok := prev.Ports[k]
		if !ok || !old.Equal(&sp) {
			changed = append(changed, k)
		}
	}
	for k := range prev.Ports {
		if _, ok := next.Ports[k]; !ok {
			removed = append(removed, k)
		}
	}
	slices.Sort(changed)
	slices.Sort(removed)
	return changed, removed
}

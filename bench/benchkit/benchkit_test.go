package benchkit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteSection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "docs", "benchmarks.md")
	if err := WriteSection(path, "Services", "bench-services", "one\n"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("# Benchmarks\n\n## Ingress\n\n_Not measured yet._\n\n## Services\n\n<!-- bench-services:begin -->\nold\n<!-- bench-services:end -->\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteSection(path, "Services", "bench-services", "new\n"); err != nil {
		t.Fatal(err)
	}
	if err := WriteSection(path, "Ingress", "bench-ingress", "fast\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	want := "# Benchmarks\n\n## Ingress\n\n<!-- bench-ingress:begin -->\nfast\n<!-- bench-ingress:end -->\n\n## Services\n\n<!-- bench-services:begin -->\nnew\n<!-- bench-services:end -->\n"
	if string(b) != want {
		t.Errorf("document:\n%s\nwant:\n%s", b, want)
	}
	os.WriteFile(path, []byte("# Benchmarks\n\n## Pod network\n\nhand-written notes\n"), 0o644)
	if err := WriteSection(path, "Pod network", "bench-net", "x\n"); err == nil || !strings.Contains(err.Error(), "not overwriting") {
		t.Errorf("overwrote hand-written text: %v", err)
	}
}

func TestStatistics(t *testing.T) {
	v := []float64{4, 1, 3, 2}
	if Median(v) != 2.5 || Quantile(v, 1) != 4 || Pct(v, 50) != 2 || Pct(v, 99) != 4 {
		t.Errorf("median %v q1 %v p50 %v p99 %v", Median(v), Quantile(v, 1), Pct(v, 50), Pct(v, 99))
	}
}

#!/usr/bin/env bash
# Runs every fuzz target in the module (every `func FuzzX` in a _test.go file) for
# FUZZTIME each (default 30s), one after the other. Fails on the first crash; go test
# writes the failing input under the package's testdata/fuzz/ for a regression seed.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${1:-30s}"
export PATH="$PATH:/usr/local/go/bin"
mapfile -t files < <(grep -rl --include='*_test.go' '^func Fuzz' cmd internal | sort)
if ((${#files[@]} == 0)); then
  echo "no fuzz targets found" >&2
  exit 1
fi
n=0
for f in "${files[@]}"; do
  dir="./$(dirname "$f")"
  for target in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$f"); do
    echo "== $target ($dir, $fuzztime)"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$dir"
    n=$((n + 1))
  done
done
echo "fuzzed $n targets for $fuzztime each"

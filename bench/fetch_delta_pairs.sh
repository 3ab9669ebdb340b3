#!/usr/bin/env bash
# Fetch the delta benchmark's release pairs from the npm registry into bench/corpus-deltas/:
# two published versions of a few real front-end packages (bench/delta_bench.py).
# Pinned, so that every run compares the same bytes; idempotent like fetch_corpus.sh.
set -euo pipefail
cd "$(dirname "$0")"
packages=(
    bootstrap@5.3.2 bootstrap@5.3.3     # a patch release
    jquery@3.6.4 jquery@3.7.1           # a minor release
    react-dom@18.2.0 react-dom@18.3.1   # a minor release
    d3@7.8.5 d3@7.9.0                   # a minor release
)
mkdir -p corpus-deltas/.tarballs
for spec in "${packages[@]}"; do
    target=corpus-deltas/$(echo "$spec" | tr '@/' '--' | sed 's/^-//')
    [ -d "$target" ] && continue
    tarball=$(cd corpus-deltas/.tarballs && npm pack --silent "$spec" | tail -n 1)
    mkdir -p "$target.partial"
    tar -xzf "corpus-deltas/.tarballs/$tarball" -C "$target.partial" --strip-components=1
    mv "$target.partial" "$target"
done
rm -rf corpus-deltas/.tarballs
echo "corpus-deltas: $(find corpus-deltas -type f | wc -l) files, $(du -sb corpus-deltas | cut -f1) bytes"

#!/usr/bin/env bash
# Fetch the compression benchmark's corpus from the npm registry into bench/corpus/.
# Real front-end packages, pinned so that every run compresses the same bytes.
# Idempotent: a package already unpacked is not fetched again.
set -euo pipefail
cd "$(dirname "$0")"
packages=(
    bootstrap@5.3.9
    bootstrap-icons@1.13.2
    react-dom@19.3.1
    d3@7.9.2
    lodash@4.18.1
    font-awesome@4.7.0
)
mkdir -p corpus/.tarballs
for spec in "${packages[@]}"; do
    target=corpus/$(echo "$spec" | tr '@/' '--' | sed 's/^-//')
    [ -d "$target" ] && continue
    tarball=$(cd corpus/.tarballs && npm pack --silent "$spec" | tail -n 1)
    mkdir -p "$target.partial"
    tar -xzf "corpus/.tarballs/$tarball" -C "$target.partial" --strip-components=1
    mv "$target.partial" "$target"
done
rm -rf corpus/.tarballs
echo "corpus: $(find corpus -type f | wc -l) files, $(du -sb corpus | cut -f1) bytes"

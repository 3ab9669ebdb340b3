#!/usr/bin/env bash
# Make the local stand-in for the official python:*-slim-bookworm image and print its name.
#
# No container registry is reachable from these machines, so the image tests build
# servestatic/base FROM a Debian bookworm root made here with debootstrap (minbase plus
# python3 and python3-venv) and `podman import`. The root is cached as a tarball under
# .cache/image-base, so only the first run on a machine pays for debootstrap; a run
# with the image already in podman's store does nothing.
#
# Usage: scripts/image-base.sh [ARCH]   (a Debian architecture: the host's, the default, or
# arm64 on an amd64 host). Another architecture than the host's is debootstrapped under emulation
# (scripts/install/qemu.sh registers qemu-aarch64 with binfmt_misc) and named
# ...:bookworm-ARCH; the host's keeps the plain name the image tests use.
set -euo pipefail
cd "$(dirname "$0")/.."

host=$(dpkg --print-architecture)
arch=${1:-$host}
image=localhost/servestatic-test/python:bookworm
cache=.cache/image-base
tarball=$cache/bookworm-minbase-python3.tar
if [ "$arch" != "$host" ]; then
    image=$image-$arch
    tarball=$cache/bookworm-minbase-python3-$arch.tar
fi
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9  # concurrent test runs share one debootstrap

if podman image exists "$image"; then
    echo "$image"
    exit 0
fi

if [ ! -s "$tarball" ]; then
    echo "scripts/image-base.sh: debootstrap bookworm ($arch) into $cache (once per machine)" >&2
    rootfs=$(mktemp -d "$cache/rootfs.XXXXXX")
    trap 'rm -rf "$rootfs"' EXIT
    log=$cache/debootstrap-$arch.log
    if ! debootstrap --arch="$arch" --variant=minbase --include=python3,python3-venv bookworm "$rootfs" \
            "$mirror" >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        echo "scripts/image-base.sh: debootstrap failed; the whole log is $log" >&2
        exit 1
    fi
    # What the official slim images also leave out: package caches, lists, docs.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
        "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
    tar --numeric-owner -C "$rootfs" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
fi

podman import --os linux --arch "$arch" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    "$tarball" "$image" >/dev/null
echo "$image"

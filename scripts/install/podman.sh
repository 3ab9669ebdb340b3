#!/usr/bin/env bash
# podman and friends for the image tests (tests/test_image.py), plus the containers.conf
# that makes `podman run` work on these machines. Idempotent: installs only what is
# missing and rewrites the config only when it differs.
#
# Why the config: crun fails on this cgroup layout, so the runtime is runc; and podman's
# default ulimits (nofile 1048576) exceed the host's hard limits, so every `podman run`
# would fail in setrlimit unless they are capped at what the host allows.
set -euo pipefail

source "$(dirname "$0")/../lib/apt.sh"
apt_install_missing podman runc debootstrap uidmap slirp4netns fuse-overlayfs

nofile=$(ulimit -Hn)
[ "$nofile" = "unlimited" ] && nofile=1048576
nproc=$(ulimit -Hu)
if [ "$nproc" = "unlimited" ] || [ "$nproc" -gt 32768 ]; then
    nproc=32768
fi
config=/etc/containers/containers.conf.d/50-servestatic.conf
wanted="# Written by servestatic scripts/install/podman.sh
[containers]
default_ulimits = [\"nofile=${nofile}:${nofile}\", \"nproc=${nproc}:${nproc}\"]

[engine]
runtime = \"runc\"
"
if [ "$(cat "$config" 2>/dev/null)" != "$(printf '%s' "$wanted")" ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo mkdir -p "$(dirname "$config")"
    printf '%s' "$wanted" | $sudo tee "$config" >/dev/null
fi

#!/usr/bin/env bash
# arm64 under emulation, for the release's linux/arm64 images (scripts/release,
# tests/test_release.py): Debian's qemu-user-static, and its aarch64 interpreter
# registered with the kernel's binfmt_misc so that an arm64 binary (in `podman build
# --platform linux/arm64`, in a debootstrap of an arm64 root) just runs.
# Idempotent: installs only what is missing, mounts binfmt_misc only when it is not,
# registers only when qemu-aarch64 is not registered already.
#
# Why by hand: on a machine with systemd, systemd-binfmt registers what
# /usr/lib/binfmt.d/ lists at boot and at install; these machines have no systemd, so
# nothing would. The `F` flag in Debian's entry makes the kernel open the interpreter
# at registration, so it works inside containers and chroots without qemu in them.
set -euo pipefail
source "$(dirname "$0")/../lib/apt.sh"
apt_install_missing qemu-user-static

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
binfmt=/proc/sys/fs/binfmt_misc
if [ ! -e "$binfmt/register" ]; then
    $sudo mount -t binfmt_misc binfmt_misc "$binfmt"
fi
if [ ! -e "$binfmt/qemu-aarch64" ]; then
    entry=$(grep -v '^#' /usr/lib/binfmt.d/qemu-aarch64.conf | grep -v '^$' | head -n 1)
    # A concurrent run may have registered it in between: EEXIST is success too.
    printf '%s' "$entry" | $sudo tee "$binfmt/register" >/dev/null 2>&1 || [ -e "$binfmt/qemu-aarch64" ]
fi
grep -qx enabled "$binfmt/qemu-aarch64" || {
    echo "qemu.sh: qemu-aarch64 is registered but not enabled in $binfmt" >&2
    exit 1
}

#!/usr/bin/env bash
# The Cloud Native Buildpacks lifecycle and pack, built from their Go modules with the
# machine's Go, for tests/test_buildpack.py. No prebuilt binaries can be fetched here,
# but the Go module proxy serves the source. Idempotent: a stamp per version makes a
# second run instant. Also creates the unprivileged user the lifecycle insists on (it
# refuses to run as root).
#
# Layout (.cache/ is gitignored):
#   .cache/cnb/lifecycle-VERSION/lifecycle/   lifecycle, launcher, and the phase symlinks
#   .cache/cnb/lifecycle-VERSION/lifecycle.tgz  the same as a release archive (for pack)
#   .cache/cnb/lifecycle -> lifecycle-VERSION/lifecycle
#   .cache/cnb/lifecycle-VERSION/lifecycle-arm64/  the same binaries for linux/arm64
#   .cache/cnb/lifecycle-arm64 -> lifecycle-VERSION/lifecycle-arm64
#   .cache/cnb/bin/pack
# The arm64 lifecycle (cross-compiled: GOARCH=arm64) runs the released buildpack's arm64
# detect and build under emulation in tests/test_release.py (scripts/install/qemu.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."

LIFECYCLE_VERSION=${LIFECYCLE_VERSION:-0.20.4}
PACK_VERSION=${PACK_VERSION:-0.36.0}
CNB_USER=${CNB_USER:-cnb}
root=$PWD/.cache/cnb
out=$root/lifecycle-$LIFECYCLE_VERSION

go=$(command -v go || true)
[ -n "$go" ] || go=/usr/local/go/bin/go
if [ ! -x "$go" ]; then
    echo "lifecycle.sh: Go is not installed; cannot build the CNB lifecycle" >&2
    exit 1
fi

source_dir() {  # source_dir MODULE VERSION: download a module, print its directory
    local dir
    dir=$("$go" mod download -json "$1@$2" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
    [ -n "$dir" ] || { echo "lifecycle.sh: cannot download $1@$2" >&2; exit 1; }
    echo "$dir"
}

build() {  # build OUT_FILE MODULE_DIR PACKAGE [LDFLAGS]   (GOARCH in the environment cross-compiles)
    # Built as its own main module, as its Makefile does: `go install pkg@version` would
    # also ask the proxy for the module's version list, which this network refuses.
    (cd "$2" && CGO_ENABLED=0 GOFLAGS="-buildvcs=false -mod=readonly" \
        "$go" build -trimpath -ldflags "-s -w ${4:-}" -o "$1" "$3")
}

build_lifecycle() {  # build_lifecycle DIR: the lifecycle, the launcher and the phase symlinks
    local src version_flag phase
    src=$(source_dir github.com/buildpacks/lifecycle "v$LIFECYCLE_VERSION")
    mkdir -p "$1"
    version_flag="-X github.com/buildpacks/lifecycle/cmd.Version=$LIFECYCLE_VERSION"
    build "$1/lifecycle" "$src" ./cmd/lifecycle "$version_flag"
    build "$1/launcher" "$src" ./cmd/launcher "$version_flag"
    # One multi-call binary; the phase is chosen by the name it is run under.
    for phase in detector analyzer restorer builder exporter rebaser creator extender; do
        ln -sfn lifecycle "$1/$phase"
    done
}

if [ ! -e "$out/.built" ] || [ ! -x "$out/lifecycle/launcher" ] || [ ! -s "$out/lifecycle.tgz" ]; then
    echo "lifecycle.sh: building CNB lifecycle $LIFECYCLE_VERSION from its Go module (a few minutes)"
    src=$(source_dir github.com/buildpacks/lifecycle "v$LIFECYCLE_VERSION")
    rm -rf "$out/lifecycle" "$out/lifecycle.tgz" "$out/.built"
    build_lifecycle "$out/lifecycle"
    # The release archive pack puts into a builder, made by the lifecycle's own packager.
    (cd "$src" && GOFLAGS="-buildvcs=false -mod=readonly" "$go" run ./tools/packager \
        -inputDir "$out/lifecycle" -archivePath "$out/lifecycle.tgz" \
        -descriptorPath lifecycle.toml -version "$LIFECYCLE_VERSION" >/dev/null)
    touch "$out/.built"
fi
ln -sfn "lifecycle-$LIFECYCLE_VERSION/lifecycle" "$root/lifecycle"

if [ ! -e "$out/.built-arm64" ] || [ ! -x "$out/lifecycle-arm64/lifecycle" ]; then
    echo "lifecycle.sh: building CNB lifecycle $LIFECYCLE_VERSION for linux/arm64"
    rm -rf "$out/lifecycle-arm64"
    GOARCH=arm64 build_lifecycle "$out/lifecycle-arm64"
    touch "$out/.built-arm64"
fi
ln -sfn "lifecycle-$LIFECYCLE_VERSION/lifecycle-arm64" "$root/lifecycle-arm64"

if [ ! -e "$root/bin/.pack-$PACK_VERSION" ]; then
    echo "lifecycle.sh: building pack $PACK_VERSION from its Go module (a few minutes)"
    mkdir -p "$root/bin"
    build "$root/bin/pack" "$(source_dir github.com/buildpacks/pack "v$PACK_VERSION")" ./cmd/pack \
        "-X github.com/buildpacks/pack.Version=$PACK_VERSION"
    touch "$root/bin/.pack-$PACK_VERSION"
fi

# The test stand-in for a Python buildpack (tests/buildpacks/cpython) provides the
# system Python, which needs venv and pip to be of use to a buildpack.
if [ "$(id -u)" = 0 ] && ! /usr/bin/python3 -c 'import ensurepip, venv, pip' 2>/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        python3 python3-venv python3-pip >/dev/null
fi

# The lifecycle refuses to run as root; the tests run its phases as this user.
if [ "$(id -u)" = 0 ] && ! id -u "$CNB_USER" >/dev/null 2>&1; then
    useradd --system --user-group --no-create-home --shell /usr/sbin/nologin "$CNB_USER"
fi

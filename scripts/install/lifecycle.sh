#!/usr/bin/env bash
# The Cloud Native Buildpacks lifecycle (and pack), built from their Go modules with
# the machine's Go, for tests/test_buildpack.py. No prebuilt binaries can be fetched
# here, but the Go module proxy serves the source. Idempotent: a stamp per version
# makes a second run instant. Also creates the unprivileged user the lifecycle
# insists on (it refuses to run as root).
#
# Layout (.cache/ is gitignored):
#   .cache/cnb/lifecycle-VERSION/{lifecycle,launcher,detector,builder,...}
#   .cache/cnb/lifecycle -> lifecycle-VERSION
#   .cache/cnb/bin/pack   (PACK=1 or when PACK_VERSION is set)
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

build() {  # build OUT_FILE MODULE VERSION PACKAGE_DIR [LDFLAGS]
    # Built as its own main module (as its Makefile does), from the module cache:
    # `go install pkg@version` would also ask the proxy for the version list, which
    # this network's proxy refuses.
    local target=$1 module=$2 version=$3 package=$4 ldflags=${5:-}
    local dir
    dir=$("$go" mod download -json "$module@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
    [ -n "$dir" ] || { echo "lifecycle.sh: cannot download $module@$version" >&2; exit 1; }
    (cd "$dir" && CGO_ENABLED=0 GOFLAGS="-buildvcs=false -mod=readonly" \
        "$go" build -trimpath -ldflags "-s -w $ldflags" -o "$target" "$package")
}

if [ ! -e "$out/.built" ]; then
    echo "lifecycle.sh: building CNB lifecycle $LIFECYCLE_VERSION from its Go module (a few minutes)"
    mkdir -p "$out"
    version_flag="-X github.com/buildpacks/lifecycle/cmd.Version=$LIFECYCLE_VERSION"
    build "$out/lifecycle" github.com/buildpacks/lifecycle "v$LIFECYCLE_VERSION" ./cmd/lifecycle "$version_flag"
    build "$out/launcher" github.com/buildpacks/lifecycle "v$LIFECYCLE_VERSION" ./cmd/launcher "$version_flag"
    # One multi-call binary; the phase is chosen by the name it is run under.
    for phase in detector analyzer restorer builder exporter rebaser creator extender; do
        ln -sfn lifecycle "$out/$phase"
    done
    touch "$out/.built"
fi
ln -sfn "lifecycle-$LIFECYCLE_VERSION" "$root/lifecycle"

if [ -n "${PACK:-}" ] && [ ! -e "$root/bin/.pack-$PACK_VERSION" ]; then
    echo "lifecycle.sh: building pack $PACK_VERSION from its Go module (a few minutes)"
    mkdir -p "$root/bin"
    build "$root/bin/pack" github.com/buildpacks/pack "v$PACK_VERSION" ./cmd/pack \
        "-X github.com/buildpacks/pack.Version=$PACK_VERSION"
    touch "$root/bin/.pack-$PACK_VERSION"
fi

# The lifecycle refuses to run as root; the tests run its phases as this user.
if [ "$(id -u)" = 0 ] && ! id -u "$CNB_USER" >/dev/null 2>&1; then
    useradd --system --user-group --no-create-home --shell /usr/sbin/nologin "$CNB_USER"
fi

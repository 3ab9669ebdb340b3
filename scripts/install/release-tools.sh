#!/usr/bin/env bash
# The release tools, for scripts/release and tests/test_release.py:
#   actionlint (lints .github/workflows), crane (go-containerregistry: pushes, digests,
#   image indexes, and `crane registry serve`, the throwaway local registry), oras (SBOMs
#   attached to images as OCI referrers) and cosign (signatures) built from their Go
#   modules with the machine's Go, as lifecycle.sh builds pack; zizmor (workflow security lint),
#   twine (checks the wheel and sdist) and build (makes them) from PyPI into .venv.
# Idempotent: a stamp per tool and version makes a second run instant.
#
# Layout (.cache/ is gitignored):
#   .cache/release/bin/actionlint, crane, oras, cosign
set -euo pipefail
cd "$(dirname "$0")/../.."

ACTIONLINT_VERSION=${ACTIONLINT_VERSION:-1.7.12}
CRANE_VERSION=${CRANE_VERSION:-0.20.2}
ZIZMOR_VERSION=${ZIZMOR_VERSION:-1.32.0}
TWINE_VERSION=${TWINE_VERSION:-7.0.0}
BUILD_VERSION=${BUILD_VERSION:-1.6.1}
ORAS_VERSION=${ORAS_VERSION:-1.3.6}
COSIGN_VERSION=${COSIGN_VERSION:-2.6.1}
bin=$PWD/.cache/release/bin

go=$(command -v go || true)
[ -n "$go" ] || go=/usr/local/go/bin/go
if [ ! -x "$go" ]; then
    echo "release-tools.sh: Go is not installed; cannot build actionlint, crane, oras and cosign" >&2
    exit 1
fi

build() {  # build NAME MODULE VERSION PACKAGE: one binary from its module's source
    local dir
    [ -e "$bin/.$1-$3" ] && [ -x "$bin/$1" ] && return 0
    echo "release-tools.sh: building $1 $3 from its Go module"
    dir=$("$go" mod download -json "$2@v$3" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
    [ -n "$dir" ] || { echo "release-tools.sh: cannot download $2@v$3" >&2; exit 1; }
    mkdir -p "$bin"
    # Built as its own main module (as lifecycle.sh does): `go install pkg@version` would
    # also ask the proxy for the version list, which this network refuses.
    (cd "$dir" && CGO_ENABLED=0 GOFLAGS="-buildvcs=false -mod=readonly" \
        nice -n 10 "$go" build -trimpath -ldflags "-s -w" -o "$bin/$1" "$4")
    touch "$bin/.$1-$3"
}

build actionlint github.com/rhysd/actionlint "$ACTIONLINT_VERSION" ./cmd/actionlint
build crane github.com/google/go-containerregistry "$CRANE_VERSION" ./cmd/crane
build oras oras.land/oras "$ORAS_VERSION" ./cmd/oras
# cosign's build is the long one (hundreds of modules: 7 min from cold on 2 busy cores, once; the
# stamp and Go's build cache make it free after).
build cosign github.com/sigstore/cosign/v2 "$COSIGN_VERSION" ./cmd/cosign

# PyPI tools into the project's venv (scripts/setup makes it), only when missing.
pip_missing=()
.venv/bin/python -c "import importlib.metadata as m; assert m.version('zizmor') == '$ZIZMOR_VERSION'" \
    2>/dev/null || pip_missing+=("zizmor==$ZIZMOR_VERSION")
.venv/bin/python -c "import importlib.metadata as m; assert m.version('twine') == '$TWINE_VERSION'" \
    2>/dev/null || pip_missing+=("twine==$TWINE_VERSION")
.venv/bin/python -c "import importlib.metadata as m; assert m.version('build') == '$BUILD_VERSION'" \
    2>/dev/null || pip_missing+=("build==$BUILD_VERSION")
if [ ${#pip_missing[@]} -gt 0 ]; then
    echo "release-tools.sh: installing ${pip_missing[*]}"
    .venv/bin/python -m pip install --quiet "${pip_missing[@]}"
fi

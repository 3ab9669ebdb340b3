#!/usr/bin/env bash
# Download, on the host, every wheel the image builds need, into .cache/wheelhouse/pyX.Y,
# and print that directory.
#
# Containers here cannot reach PyPI (they do not trust this network's TLS proxy), so
# image builds run with `--network none` and pip `--no-index --find-links` on this
# directory. It holds servestatic's dependencies (read from pyproject.toml, with the
# zstd extra), the build backend to make servestatic's own wheel, and the Django
# example's requirements. A stamp keyed on those inputs makes a rerun free.
#
# Usage: scripts/wheelhouse.sh [PYTHON_VERSION [ARCH]]   (the image's Python, default 3.11;
# a Debian architecture, default the host's). For another architecture than the host's
# (the release's arm64 image) the wheels go to .cache/wheelhouse/pyX.Y-ARCH, chosen by the
# manylinux tags the buildpack's packaging uses (servestatic/platform/cnbpackage.py).
set -euo pipefail
cd "$(dirname "$0")/.."

version=${1:-3.11}
arch=${2:-$(dpkg --print-architecture)}
scripts/setup
python=.venv/bin/python
dest=.cache/wheelhouse/py$version
platforms=()
if [ "$arch" != "$(dpkg --print-architecture)" ]; then
    dest=$dest-$arch
    for tag in $("$python" -c "import sys; from servestatic.platform.cnbpackage import platform_tags
print(' '.join(platform_tags(sys.argv[1])))" "$arch"); do
        platforms+=(--platform "$tag")
    done
fi
mkdir -p "$dest"
exec 9>"$dest/.lock"
flock 9  # the image, chart and buildpack tests may ask at the same time

requirements=$("$python" - <<'PY'
import tomllib
from pathlib import Path

project = tomllib.loads(Path("pyproject.toml").read_text())
lines = list(project["build-system"]["requires"])
lines += project["project"]["dependencies"]
lines += project["project"]["optional-dependencies"]["zstd"]
django = Path("examples/django/requirements.txt")
if django.exists():
    lines += [line.split("#")[0].strip() for line in django.read_text().splitlines()]
else:
    lines.append("django>=5.0")
print("\n".join(sorted({line for line in lines if line})))
PY
)
stamp=$dest/.stamp-$(printf '%s' "$requirements" | sha256sum | cut -c1-16)
if [ ! -e "$stamp" ]; then
    echo "scripts/wheelhouse.sh: downloading wheels for Python $version ($arch) into $dest" >&2
    rm -f "$dest"/*.whl "$dest"/.stamp-*  # no stale versions left to pick from
    printf '%s\n' "$requirements" > "$dest/requirements.txt"
    # Only wheels, for the image's Python; the host is Debian bookworm x86_64 like the image.
    "$python" -m pip download --quiet --no-cache-dir --only-binary=:all: \
        --python-version "$version" ${platforms[@]+"${platforms[@]}"} --dest "$dest" \
        -r "$dest/requirements.txt" >&2
    touch "$stamp"
fi
echo "$dest"

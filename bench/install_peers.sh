#!/usr/bin/env bash
# Install what the serving benchmark (bench/serve_bench.py) compares against.
#
# - wrk, nginx + its brotli_static module, and Caddy, from Debian;
# - FastAPI into our own .venv, for the ASGI suite only (a bench requirement,
#   not a runtime dependency of servestatic): ours chains it, and the same app
#   runs alone on gunicorn's `asgi` worker as the baseline for a miss;
# - each peer in its own venv under .cache/bench-venvs/serve-*: PyPI's
#   `servestatic` has our package's import name, so a peer can never share our
#   venv. gunicorn is pinned to the version in our venv, and whatever of
#   uvloop / gunicorn-h1c / httptools our venv has is installed at the same
#   version in every gunicorn peer venv, so all gunicorns run the same server.
#   The uvicorn peer gets uvloop and httptools, as `uvicorn[standard]` (and so
#   FastAPI's own install instructions) would give it.
#
# Idempotent: installs only what is missing; a second run takes a second.
set -euo pipefail
cd "$(dirname "$0")/.."

FASTAPI=fastapi==0.163.2
WHITENOISE="whitenoise[brotli]==6.12.0"
SERVESTATIC="servestatic[brotli]==4.4.0"
UVICORN="uvicorn==0.54.0 uvloop==0.23.0 httptools==0.9.0"
YAPPI=yappi==1.7.6  # bench/serve_profile.py
GRANIAN=granian==2.8.9

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || missing+=(nginx)
command -v caddy >/dev/null || missing+=(caddy)
[ -e /usr/share/nginx/modules-available/mod-http-brotli-static.conf ] \
    || [ -e /usr/lib/nginx/modules/ngx_http_brotli_static_module.so ] \
    || missing+=(libnginx-mod-http-brotli-static)
if [ ${#missing[@]} -gt 0 ]; then
    [ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -print -quit)" ] || apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

[ -x .venv/bin/gunicorn ] || scripts/setup
installed() {  # DIST...: "dist==version" for each one installed in our venv
    .venv/bin/python - "$@" <<'EOF'
import importlib.metadata
import sys

for name in sys.argv[1:]:
    try:
        print(f"{name}=={importlib.metadata.version(name)}")
    except importlib.metadata.PackageNotFoundError:
        pass
EOF
}
if [ "$(installed fastapi)" != "$FASTAPI" ]; then
    .venv/bin/pip install -q --disable-pip-version-check "$FASTAPI"
fi
gunicorn=$(installed gunicorn)
read -r -a accelerators <<< "$(installed uvloop gunicorn-h1c httptools | tr '\n' ' ')"
python=${PYTHON:-$(.venv/bin/python -c 'import sys; print(sys._base_executable)')}

peer_venv() {  # NAME REQUIREMENT...
    local venv=.cache/bench-venvs/serve-$1; shift
    local stamp="$*"
    if [ -f "$venv/.installed" ] && [ "$(cat "$venv/.installed")" = "$stamp" ]; then
        return
    fi
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "$@"
    echo "$stamp" > "$venv/.installed"
}
peer_venv whitenoise "$gunicorn" "${accelerators[@]}" "$WHITENOISE"
peer_venv servestatic "$gunicorn" "${accelerators[@]}" "$SERVESTATIC"
peer_venv servestatic-asgi "$gunicorn" "${accelerators[@]}" "$SERVESTATIC" "$FASTAPI"
# serve_profile.py's profiler, on the worker's PYTHONPATH rather than in our venv.
profile_libs=.cache/bench-venvs/serve-profile
if [ "$(cat "$profile_libs/.installed" 2>/dev/null)" != "$YAPPI" ]; then
    rm -rf "$profile_libs"
    .venv/bin/pip install -q --disable-pip-version-check --target "$profile_libs" "$YAPPI"
    echo "$YAPPI" > "$profile_libs/.installed"
fi
# shellcheck disable=SC2086  # UVICORN is a list of requirements
peer_venv servestatic-uvicorn $UVICORN "$SERVESTATIC" "$FASTAPI"
peer_venv granian "$GRANIAN" "$FASTAPI"
echo "bench peers: wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}'), $(nginx -v 2>&1)," \
    "caddy $(caddy version | awk '{print $1}'), $GRANIAN, ${gunicorn}${accelerators[*]:+ ${accelerators[*]}}, $FASTAPI"

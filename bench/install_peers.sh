#!/usr/bin/env bash
# Install what the serving benchmark (bench/serve_bench.py) compares against.
#
# - wrk, nginx and nginx's brotli_static module from Debian;
# - gunicorn + WhiteNoise and gunicorn + ServeStatic, each in its own venv under
#   .cache/bench-venvs/serve-*: PyPI's `servestatic` has our package's import
#   name, so a peer can never share our venv; each runs as its own gunicorn.
#   gunicorn is pinned to the version in our venv so all three run the same server.
#
# Idempotent: installs only what is missing; a second run takes a second.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || missing+=(nginx)
[ -e /usr/share/nginx/modules-available/mod-http-brotli-static.conf ] \
    || [ -e /usr/lib/nginx/modules/ngx_http_brotli_static_module.so ] \
    || missing+=(libnginx-mod-http-brotli-static)
if [ ${#missing[@]} -gt 0 ]; then
    [ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -print -quit)" ] || apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

[ -x .venv/bin/gunicorn ] || scripts/setup
gunicorn_version=$(.venv/bin/python -c 'import gunicorn; print(gunicorn.__version__)')
python=${PYTHON:-$(.venv/bin/python -c 'import sys; print(sys._base_executable)')}

peer_venv() {  # NAME REQUIREMENT...
    local venv=.cache/bench-venvs/serve-$1; shift
    local stamp="gunicorn==$gunicorn_version $*"
    if [ -f "$venv/.installed" ] && [ "$(cat "$venv/.installed")" = "$stamp" ]; then
        return
    fi
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "gunicorn==$gunicorn_version" "$@"
    echo "$stamp" > "$venv/.installed"
}
peer_venv whitenoise "whitenoise[brotli]==6.12.0"
peer_venv servestatic "servestatic[brotli]==4.4.0"
echo "bench peers: wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}'), $(nginx -v 2>&1), gunicorn $gunicorn_version"

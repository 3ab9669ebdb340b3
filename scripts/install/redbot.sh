#!/usr/bin/env bash
# REDbot (HTTP lint, `redbot` on PyPI) for tests/test_http_cdn_headers.py, which asks it about
# the headers servestatic sends for the CDN. In a venv of its own, .cache/redbot/venv
# (gitignored), so its dependencies never meet the project's; a stamp per version makes a
# second run instant.
set -euo pipefail
cd "$(dirname "$0")/../.."

REDBOT_VERSION=${REDBOT_VERSION:-2.7.1}
venv=$PWD/.cache/redbot/venv
[ -e "$venv/.redbot-$REDBOT_VERSION" ] && [ -x "$venv/bin/redbot" ] && exit 0
echo "redbot.sh: installing redbot $REDBOT_VERSION into .cache/redbot/venv" >&2
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check "redbot==$REDBOT_VERSION"
touch "$venv/.redbot-$REDBOT_VERSION"

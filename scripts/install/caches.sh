#!/usr/bin/env bash
# Varnish and nginx from Debian, for the CDN recipe tests (tests/test_cdn_*.py), which
# start them as plain processes on loopback ports with docs/cdn/varnish.vcl and
# docs/cdn/nginx.conf. Idempotent: installs only what is missing, with one apt-get update.
#
# Debian's packages also enable system services listening on port 80 and 6081; the tests
# never use them, and policy-rc.d-less containers without an init just do not start them.
set -euo pipefail

missing=()
command -v varnishd >/dev/null || [ -x /usr/sbin/varnishd ] || missing+=(varnish)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
if [ ${#missing[@]} -gt 0 ]; then
    echo "scripts/install/caches.sh: installing ${missing[*]}" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

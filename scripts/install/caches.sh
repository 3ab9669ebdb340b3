#!/usr/bin/env bash
# Varnish and nginx from Debian, for the CDN recipe tests (tests/test_cdn_*.py), which
# start them as plain processes on loopback ports with docs/cdn/varnish.vcl and
# docs/cdn/nginx.conf. Idempotent: installs only what is missing, with one apt-get update.
#
# The packages' own services (nginx on port 80, varnish on 6081) are not used by the tests;
# on a machine with systemd they start at install, which the tests do not depend on.
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

#!/usr/bin/env bash
# Varnish (with varnish-modules, for the xkey vmod of the cache-tag tests) and nginx from
# Debian, for the CDN recipe tests (tests/test_cdn.py), which start
# them as plain processes on loopback ports with docs/cdn/varnish.vcl and docs/cdn/nginx.conf.
# Idempotent: installs only what is missing.
#
# The packages' own services (nginx on port 80, varnish on 6081) are not used by the tests;
# on a machine with systemd they start at install, which the tests do not depend on.
set -euo pipefail
source "$(dirname "$0")/../lib/apt.sh"
apt_install_missing varnish varnish-modules nginx

#!/usr/bin/env bash
# The openssl command, which makes a throwaway certificate for the TLS test
# (tests/test_resilience.py: gunicorn's --certfile/--keyfile through our worker).
# Idempotent: installs only what is missing.
set -euo pipefail
source "$(dirname "$0")/../lib/apt.sh"
apt_install_missing openssl

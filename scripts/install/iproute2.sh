#!/usr/bin/env bash
# `ss`, with which a test reads the listening socket's backlog
# (tests/test_gunicorn_config.py: gunicorn's --backlog reaches the kernel).
# Idempotent: installs only what is missing.
set -euo pipefail
source "$(dirname "$0")/../lib/apt.sh"
apt_install_missing iproute2

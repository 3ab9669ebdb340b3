#!/usr/bin/env bash
# Headless Chromium, with which a test checks what a real browser's Resource Timing sees of
# a cross-origin file (tests/test_browser.py: Timing-Allow-Origin).
# Idempotent: installs only what is missing.
set -euo pipefail
source "$(dirname "$0")/../lib/apt.sh"
apt_install_missing chromium

"""A throwaway certificate for the TLS tests (openssl, from scripts/install/openssl.sh)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support import needs_tool


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate and its key for 127.0.0.1, valid for a day: (cert.pem, key.pem)."""
    openssl = needs_tool("openssl")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key

"""The SBOM writer's Debian half (servestatic/platform/sbom.py), on dpkg status files as
dpkg writes them and on this machine's own dpkg lists; tests/test_release.py checks a
released image's bill against dpkg-query run inside the image."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from servestatic.platform import sbom
from tests.support import needs

BOOKWORM = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'

STATUS = """Package: libssl3
Status: install ok installed
Priority: optional
Architecture: amd64
Multi-Arch: same
Version: 3.0.15-1~deb12u1
Description: Secure Sockets Layer toolkit - shared libraries
 This package is part of the OpenSSL project: it contains the shared libraries.

Package: bsdutils
Essential: yes
Status: install ok installed
Architecture: amd64
Version: 1:2.38.1-5+deb12u3

Package: tzdata
Status: hold ok installed
Architecture: all
Version: 2024a-0+deb12u1

Package: vim-tiny
Status: deinstall ok config-files
Architecture: amd64
Version: 2:9.0.1378-2
"""


def test_installed_debian_packages_are_listed_with_their_package_urls() -> None:
    packages = sbom.debian_packages(STATUS, BOOKWORM)
    # Removed packages whose configuration files remain are not installed.
    assert [package.name for package in packages] == ["bsdutils", "libssl3", "tzdata"]
    assert [package.purl for package in packages] == [
        "pkg:deb/debian/bsdutils@1%3A2.38.1-5%2Bdeb12u3?arch=amd64&distro=debian-12",
        "pkg:deb/debian/libssl3@3.0.15-1~deb12u1?arch=amd64&distro=debian-12",
        "pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all&distro=debian-12",
    ]


def test_a_system_that_is_not_debian_lists_no_debian_packages() -> None:
    assert sbom.debian_packages(STATUS, "ID=alpine\nVERSION_ID=3.20.0\n") == []
    assert sbom.debian_packages(STATUS, "") == []


def test_python_and_debian_packages_make_one_valid_bill() -> None:
    python = [sbom.Package("brotli", "1.1.0", "MIT", "ab" * 32)]
    packages = python + sbom.debian_packages(STATUS, BOOKWORM)
    cdx = sbom.cyclonedx("servestatic/base:test", packages)
    assert JsonStrictValidator(SchemaVersion.V1_5).validate_str(json.dumps(cdx)) is None
    assert [component["purl"] for component in cdx["components"]][:2] == [
        "pkg:pypi/brotli@1.1.0", "pkg:deb/debian/bsdutils@1%3A2.38.1-5%2Bdeb12u3?arch=amd64&distro=debian-12"]
    spdx = sbom.spdx("servestatic/base:test", packages)
    assert len({entry["SPDXID"] for entry in spdx["packages"]}) == 4
    assert spdx["packages"][2]["externalRefs"][0]["referenceLocator"].startswith("pkg:deb/debian/libssl3@")


def test_an_interpreter_no_dpkg_list_names_is_listed_with_its_cpe(tmp_path: Path) -> None:
    # A venv's python is a symlink to the interpreter, and dpkg's list may name that under
    # /bin where a merged /usr links /bin to /usr/bin: both are resolved before comparing.
    (tmp_path / "usr" / "bin").mkdir(parents=True)
    (tmp_path / "usr" / "bin" / "python3.12").write_bytes(b"")
    (tmp_path / "bin").symlink_to("usr/bin")
    (tmp_path / "venv").mkdir()
    (tmp_path / "venv" / "python").symlink_to(tmp_path / "bin" / "python3.12")
    info = tmp_path / "info"
    info.mkdir()
    (info / "libc6.list").write_text("/.\n/usr/lib/x86_64-linux-gnu/libc.so.6\n")
    venv_python = str(tmp_path / "venv" / "python")
    (unlisted,) = sbom.unpackaged_python(venv_python, "3.12.7", info)
    assert (unlisted.name, unlisted.version, unlisted.purl, unlisted.cpe) == (
        "python", "3.12.7", "pkg:generic/python@3.12.7", "cpe:2.3:a:python:python:3.12.7:*:*:*:*:*:*:*")
    (info / "python3.12-minimal.list").write_text(f"/.\n{tmp_path}/bin/python3.12\n")
    assert sbom.unpackaged_python(venv_python, "3.12.7", info) == []


def test_this_machines_interpreters_against_its_own_dpkg_lists() -> None:
    info = Path("/var/lib/dpkg/info")
    debian_python = Path("/usr/bin/python3")
    needs(info.is_dir() and debian_python.exists(), "this machine has no dpkg or no Debian python3")
    assert sbom.unpackaged_python(str(debian_python), "3.11.2", info) == []
    # The suite runs on a CPython that pyenv built, which no package installed.
    needs("/.pyenv/" in os.path.realpath(sys.executable), "the suite is not running on pyenv's CPython")
    (listed,) = sbom.unpackaged_python(sys.executable, platform.python_version(), info)
    assert listed.purl == f"pkg:generic/python@{platform.python_version()}"


def test_an_unpackaged_interpreter_makes_a_valid_bill_with_its_cpe() -> None:
    cpe = "cpe:2.3:a:python:python:3.12.7:*:*:*:*:*:*:*"
    packages = [sbom.Package("python", "3.12.7", "PSF-2.0", None, cpe=cpe)]
    cdx = sbom.cyclonedx("servestatic/base:test", packages)
    assert JsonStrictValidator(SchemaVersion.V1_5).validate_str(json.dumps(cdx)) is None
    assert cdx["components"][0]["cpe"] == packages[0].cpe
    references = sbom.spdx("servestatic/base:test", packages)["packages"][0]["externalRefs"]
    assert [(item["referenceType"], item["referenceLocator"]) for item in references] == [
        ("purl", "pkg:generic/python@3.12.7"), ("cpe23Type", packages[0].cpe)]

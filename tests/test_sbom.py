"""The SBOM writer's Debian half (servestatic/platform/sbom.py), on dpkg status files as
dpkg writes them; tests/test_release.py checks a released image's bill against dpkg-query
run inside the image."""

from __future__ import annotations

import json

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from servestatic.platform import sbom

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

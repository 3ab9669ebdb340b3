"""Software bills of materials, as CycloneDX and SPDX JSON: the buildpack's launch layer's
and each released image's.

The CNB spec asks a buildpack for an SBOM of each layer it writes, as
`<layer>.sbom.<ext>` beside the layer, in the formats buildpack.toml declares; the
lifecycle moves them into the image. The layer is a venv of Python distributions, so
the bill is read from their installed metadata, with the SHA-256 of the wheel each
came from. A released image's bill also lists the Debian packages of its base (from
dpkg's status file), which a scanner reading the bill needs to see: OpenSSL, glibc and
the rest are where most of an image's security fixes land. It also lists the Python
interpreter when no package installed it (the official python images build CPython
into /usr/local, which dpkg does not know), with the CPE a scanner matches CPython's
advisories by. Written by hand rather than with cyclonedx-python-lib, spdx-tools or
syft: it runs in the build before anything but the standard library is installed, and
the two documents are a few fixed fields per package (the tests validate the
CycloneDX one against its schema).

Both are reproducible: no time of day, and identifiers derived from the contents,
so an unchanged layer gets byte-identical SBOMs.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

CYCLONEDX_SUFFIX = ".sbom.cdx.json"
SPDX_SUFFIX = ".sbom.spdx.json"
# The CNB platforms' reproducible-build epoch; SPDX requires a creation time.
EPOCH = "1980-01-01T00:00:01Z"


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    license: str | None  # an SPDX license expression, when the package declares one
    sha256: str | None  # of the wheel it was installed from
    distro: str | None = None  # a Debian package's release ("debian-12"); None for Python's
    arch: str | None = None  # a Debian package's architecture ("amd64", "all")
    cpe: str | None = None  # for what no package manager installed: how scanners match it

    @property
    def purl(self) -> str:
        """The package URL (purl-spec): for PyPI the name is lower case with dashes; a Debian
        version is percent-encoded (an epoch's colon), with its architecture and release;
        what no package manager installed is `generic`."""
        if self.cpe is not None:
            return f"pkg:generic/{self.name}@{quote(self.version, safe='')}"
        if self.distro is None:
            return f"pkg:pypi/{normalize(self.name)}@{self.version}"
        version = quote(self.version, safe="")
        return f"pkg:deb/debian/{self.name}@{version}?arch={self.arch}&distro={self.distro}"


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_packages(site_packages: Path, wheel_dirs: Iterable[Path]) -> list[Package]:
    """The distributions installed in one site-packages directory, sorted by name."""
    wheels = {}
    for directory in wheel_dirs:
        for wheel in directory.glob("*.whl"):
            name, version = wheel.name.split("-")[:2]
            wheels[(normalize(name), version)] = wheel
    packages = []
    for dist in importlib.metadata.distributions(path=[str(site_packages)]):
        name, version = dist.metadata["Name"], dist.version
        wheel = wheels.get((normalize(name), version))
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest() if wheel else None
        packages.append(Package(name, version, dist.metadata.get("License-Expression"), digest))
    return sorted(packages, key=lambda package: normalize(package.name))


def debian_packages(status: str, os_release: str) -> list[Package]:
    """The packages dpkg has installed, from its status file (/var/lib/dpkg/status) and the
    system's /etc/os-release, sorted by name; [] where either says nothing of Debian."""
    release = dict(line.split("=", 1) for line in os_release.splitlines() if "=" in line)
    if release.get("ID") != "debian" or not release.get("VERSION_ID"):
        return []
    distro = "debian-" + release["VERSION_ID"].strip('"')
    packages = []
    for stanza in status.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines()
                      if ": " in line and not line.startswith(" "))
        if fields.get("Status", "").endswith(" installed"):  # "install ok", or "hold ok", installed
            packages.append(Package(fields["Package"], fields["Version"], None, None, distro,
                                    fields["Architecture"]))
    return sorted(packages, key=lambda package: package.name)


def unpackaged_python(executable: str, version: str, dpkg_info: Path) -> list[Package]:
    """The interpreter at `executable` (a venv's python leads to it) as a package, when none
    of dpkg's file lists (`dpkg_info`, /var/lib/dpkg/info) names it; [] when dpkg installed it.

    A bill without it would let a scanner miss every CPython advisory: syft finds such an
    interpreter by its binary and names it the same way (a generic purl and NVD's CPE).
    """
    interpreter = os.path.realpath(executable)
    name = os.path.basename(interpreter)
    for listing in dpkg_info.glob("*.list"):
        for line in listing.read_text(errors="replace").splitlines():
            # Compared resolved: a merged /usr lists some files under /bin or /lib.
            if line.endswith("/" + name) and os.path.realpath(line) == interpreter:
                return []
    return [Package("python", version, "PSF-2.0", None,
                    cpe=f"cpe:2.3:a:python:python:{version}:*:*:*:*:*:*:*")]


def _document_id(subject: str, packages: list[Package]) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, subject + "\0" + "\0".join(p.purl for p in packages))


def cyclonedx(subject: str, packages: list[Package]) -> dict:
    """A CycloneDX 1.5 BOM whose subject is the layer and whose components are its packages."""
    components = []
    for package in packages:
        component: dict[str, object] = {
            "type": "library", "bom-ref": package.purl, "name": package.name,
            "version": package.version, "purl": package.purl,
        }
        if package.license:
            component["licenses"] = [{"expression": package.license}]
        if package.sha256:
            component["hashes"] = [{"alg": "SHA-256", "content": package.sha256}]
        if package.cpe:
            component["type"], component["cpe"] = "application", package.cpe
        components.append(component)
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{_document_id(subject, packages)}",
        "version": 1,
        "metadata": {"component": {"type": "application", "bom-ref": subject, "name": subject}},
        "components": components,
    }


def spdx(subject: str, packages: list[Package]) -> dict:
    """An SPDX 2.3 document that describes each package of the layer."""
    entries, relationships = [], []
    for index, package in enumerate(packages):
        spdx_id = f"SPDXRef-Package-{index}-{re.sub(r'[^A-Za-z0-9.-]', '-', package.name)}"
        references = [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                       "referenceLocator": package.purl}]
        if package.cpe:
            references.append({"referenceCategory": "SECURITY", "referenceType": "cpe23Type",
                               "referenceLocator": package.cpe})
        entry: dict[str, object] = {
            "name": package.name, "SPDXID": spdx_id, "versionInfo": package.version,
            "downloadLocation": "NOASSERTION", "filesAnalyzed": False,
            "licenseConcluded": "NOASSERTION", "licenseDeclared": package.license or "NOASSERTION",
            "copyrightText": "NOASSERTION", "externalRefs": references,
        }
        if package.sha256:
            entry["checksums"] = [{"algorithm": "SHA256", "checksumValue": package.sha256}]
        entries.append(entry)
        relationships.append({"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                              "relatedSpdxElement": spdx_id})
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": subject,
        "documentNamespace": f"urn:uuid:{_document_id(subject, packages)}",
        "creationInfo": {"created": EPOCH, "creators": ["Tool: servestatic"]},
        "packages": entries,
        "relationships": relationships,
    }


def write(layers: Path, layer: str, subject: str, packages: list[Package]) -> None:
    """`<layer>.sbom.cdx.json` and `<layer>.sbom.spdx.json` beside the layer."""
    for suffix, document in ((CYCLONEDX_SUFFIX, cyclonedx(subject, packages)),
                             (SPDX_SUFFIX, spdx(subject, packages))):
        (layers / f"{layer}{suffix}").write_text(json.dumps(document, indent=2) + "\n")

"""SBOMs attached to the images in the registry, as OCI 1.1 referrers (oras).

Each SBOM file becomes an artifact manifest whose ``subject`` is the image it describes
(the platform's image manifest, not the index: a client resolves the index to its
platform's image first, and that is where trivy, ``oras discover --platform`` and
``docker buildx imagetools`` look), with the document's own media type as its
``artifactType``. A registry with the referrers API indexes it; one without (``crane
registry serve``, older registries) gets the OCI fallback, an index under the tag
``sha256-<hex>`` that oras keeps up to date. Either way ``oras discover`` finds it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from servestatic.platform.oci import Registry, ReleaseError, oras

MEDIA_TYPES = {".cdx.json": "application/vnd.cyclonedx+json", ".spdx.json": "application/spdx+json"}


def media_type(path: Path) -> str:
    for suffix, kind in MEDIA_TYPES.items():
        if path.name.endswith(suffix):
            return kind
    raise ReleaseError(f"{path.name}: not a CycloneDX (.cdx.json) or SPDX (.spdx.json) document")


def attach(subject: str, document: Path, registry: Registry) -> tuple[str, str]:
    """Push `document` as a referrer of `subject` (a reference by digest); returns (reference by
    digest, digest) of the artifact manifest. Run in the file's directory so its title is its name."""
    kind = media_type(document)
    output = oras("attach", "--no-tty", "--artifact-type", kind, "--format", "json", subject,
                  f"{document.name}:{kind}", registry=registry, cwd=document.parent)
    pushed = json.loads(output)
    digest = pushed["digest"]
    repository = subject.partition("@")[0]
    return f"{repository}@{digest}", digest


def discover(subject: str, registry: Registry) -> list[dict[str, Any]]:
    """The referrers of `subject` as the registry lists them (descriptors with artifactType)."""
    listing = json.loads(oras("discover", "--format", "json", subject, registry=registry))
    return listing.get("referrers") or listing.get("manifests") or []

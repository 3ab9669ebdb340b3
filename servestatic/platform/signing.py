"""Signatures over what a release pushed (cosign), made and then verified from the registry.

Three ways to sign, chosen from the environment:

* ``SERVESTATIC_RELEASE_COSIGN_KEY``: a cosign key reference (a ``cosign.key`` path,
  ``env://VAR``, or a KMS URI); its password in ``COSIGN_PASSWORD``, as cosign reads it.
  The public key is written next to the release (``dist/cosign.pub``) for users.
  No transparency-log entry is made (``--tlog-upload=false``): a key is its own proof,
  and a maintainer's machine or a test may have no way to the public Rekor.
* ``SERVESTATIC_RELEASE_KEYLESS=1``: keyless, the hosted pipeline's OIDC identity
  (GitHub Actions' ``id-token: write``) certified by Fulcio and logged in Rekor; verified
  against the workflow's identity, so it only works where that identity exists.
* neither, against the throwaway registry: a key pair made for this run only, so that a
  dry run still signs and verifies; a release to a real registry refuses to go unsigned.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from servestatic.platform.oci import Registry, ReleaseError, cosign, run, tool

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"


@dataclass(frozen=True)
class Signer:
    """How this release signs: a key reference, or keyless with the identity to verify against."""

    key: str | None  # a cosign key reference; None for keyless
    public_key: Path | None  # the file to verify with (key mode)
    identity: str | None  # the certificate identity (keyless mode)
    env: dict[str, str]  # cosign's environment (COSIGN_PASSWORD)
    ephemeral: bool = False


def signer_from_environment(environ: dict[str, str], registry_is_throwaway: bool, scratch: Path,
                            dist: Path) -> Signer:
    """The Signer the environment names, or a one-run key for a dry run; refuses to sign nothing."""
    env = {**os.environ, **{k: v for k, v in environ.items() if k.startswith("COSIGN_")}}
    if environ.get("SERVESTATIC_RELEASE_KEYLESS") == "1":
        workflow_ref = environ.get("GITHUB_WORKFLOW_REF")
        if not workflow_ref:
            raise ReleaseError("SERVESTATIC_RELEASE_KEYLESS=1 needs GitHub Actions' OIDC identity "
                               "(GITHUB_WORKFLOW_REF is not set)")
        server = environ.get("GITHUB_SERVER_URL", "https://github.com")
        return Signer(None, None, f"{server}/{workflow_ref}", env)
    key = environ.get("SERVESTATIC_RELEASE_COSIGN_KEY")
    ephemeral = False
    if not key:
        if not registry_is_throwaway:
            raise ReleaseError("nothing to sign with: set SERVESTATIC_RELEASE_COSIGN_KEY (and "
                               "COSIGN_PASSWORD) or SERVESTATIC_RELEASE_KEYLESS=1")
        env["COSIGN_PASSWORD"] = ""
        run(tool("cosign"), "generate-key-pair", cwd=scratch, env=env, capture=True)
        key, ephemeral = str(scratch / "cosign.key"), True
    public_key = dist / "cosign.pub"
    public_key.write_text(run(tool("cosign"), "public-key", "--key", key, env=env, capture=True))
    return Signer(key, public_key, None, env, ephemeral)


def sign(reference: str, signer: Signer, registry: Registry) -> None:
    """Sign an index (and, --recursive, each image it lists) by digest."""
    if signer.key is not None:
        cosign("sign", "--yes", "--recursive", "--tlog-upload=false", "--key", signer.key, reference,
               registry=registry, env=signer.env)
    else:
        cosign("sign", "--yes", "--recursive", reference, registry=registry, env=signer.env)


def verify(reference: str, signer: Signer, registry: Registry) -> list[dict]:
    """Verify the signature from the registry; returns cosign's verified payloads, each of which
    must name `reference`'s digest (a signature of something else does not count)."""
    if signer.public_key is not None:
        output = cosign("verify", "--key", signer.public_key, "--insecure-ignore-tlog=true",
                        "--output", "json", reference, registry=registry, env=signer.env)
    else:
        output = cosign("verify", "--certificate-identity", signer.identity or "",
                        "--certificate-oidc-issuer", GITHUB_ISSUER, "--output", "json", reference,
                        registry=registry, env=signer.env)
    payloads = json.loads(output)
    digest = reference.rpartition("@")[2]
    named = {payload["critical"]["image"]["docker-manifest-digest"] for payload in payloads}
    if named != {digest}:
        raise ReleaseError(f"cosign verified signatures of {named}, not of {digest}")
    return payloads


def signature_reference(reference: str, registry: Registry) -> str:
    """Where cosign keeps the signatures of `reference` (the ``sha256-<hex>.sig`` tag)."""
    return cosign("triangulate", reference, registry=registry)

"""The platform tier: how servestatic meets the platforms it is shipped on.

The Cloud Native Buildpack's build step and its packaging (cnb, cnbpackage),
the buildpack's SBOM (sbom), the container's launch decision (launch) and the
health probe a HEALTHCHECK runs (healthcheck), the one version and its copies
(versions) and the release (release). It may import any tier; no
tier imports it: only the `servestatic` command (servestatic/cli.py) and the
buildpack's scripts call it.
"""

"""Django's `collectstatic` with servestatic's build step in it.

    STORAGES = {
        "staticfiles": {"BACKEND": "servestatic.django.CompressedManifestStaticFilesStorage"},
    }

The storage is Django's `ManifestStaticFilesStorage` (hashed names, its
`staticfiles.json`), and once Django has post-processed every file it runs
`servestatic compress` over STATIC_ROOT in the same process, through the same
`compress_tree` the command uses: variants beside each file, servestatic's
manifest, the process pool, the incremental run and SERVESTATIC_CACHE_DIR. So
`collectstatic` alone leaves a root that `servestatic serve` starts from without
scanning. The class name is WhiteNoise's, so moving over is one changed line.

Compression settings come from the SERVESTATIC_* environment, as for the
command; only the root is STATIC_ROOT whatever SERVESTATIC_ROOT says.

Dictionary deltas (buildtime/deltas.py) are made here too: earlier versions come from
SERVESTATIC_CACHE_DIR, SERVESTATIC_DICTIONARIES_FROM, or the older hashed files a
`collectstatic` without `--clear` leaves in STATIC_ROOT.

The names Django hashed are passed on as immutable: Django knows them, while
the name test of `SERVESTATIC_IMMUTABLE_PATTERN=auto` must guess, and misses
the one hash in 280 that is digits only (`app.012345678901.js`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from django.contrib.staticfiles.storage import ManifestStaticFilesStorage
from django.core.management.base import BaseCommand, CommandError

from servestatic.buildtime.compress import CompressError, CompressOptions, Summary, compress_tree
from servestatic.config.settings import SettingError, Settings, load_settings
from servestatic.site.manifest import ManifestError, manifest_path, read

# Named in the one line a failure of the compress step prints.
STEP = "servestatic compress"


class CompressedManifestStaticFilesStorage(ManifestStaticFilesStorage):
    """ManifestStaticFilesStorage that compresses STATIC_ROOT for servestatic afterwards."""

    def post_process(self, paths: dict[str, Any], dry_run: bool = False,
                     **options: Any) -> Iterator[tuple[str, str | None, Any]]:
        # Read first, so that a wrong setting stops collectstatic before Django's work.
        # Raised rather than yielded: collectstatic prints "Post-processing '...' failed!"
        # and a blank line before an exception that is yielded; a CommandError raised is
        # its one line ("CommandError: ...").
        settings = self.settings()
        yield from super().post_process(paths, dry_run=dry_run, **options)
        if dry_run:
            return
        try:
            summary = self.compress(settings)
        except CompressError as error:
            raise CommandError(f"{STEP}: {error}") from None
        _report(f"servestatic: {summary.line()}")
        if summary.errors:
            raise CommandError(f"{STEP}: " + "; ".join(summary.errors))

    def integrity(self, name: str) -> str:
        """The Subresource Integrity value ("sha384-...") of the file a template names
        `name` (`css/site.css`: its hashed copy's, which is the file served), as
        `servestatic compress` recorded it; "" when the manifest has none (a build from
        before integrity values, or no compress run yet: the page then loads it unpinned)."""
        return _integrity_values(Path(self.location)).get(self.stored_name(name), "")

    @staticmethod
    def settings() -> Settings:
        """The SERVESTATIC_* settings of the environment, or collectstatic's one-line error."""
        try:
            return load_settings()  # the root is STATIC_ROOT, whatever ROOT or MOUNTS say
        except SettingError as error:
            raise CommandError(f"{STEP}: {error}") from None

    def compress(self, settings: Settings) -> Summary:
        """Compress STATIC_ROOT with the SERVESTATIC_* settings of the environment."""
        # hashed_files maps each name to the name Django gave its hashed copy.
        hashed = frozenset(str(name) for name in self.hashed_files.values())
        options = replace(CompressOptions.from_settings(settings), hashed_names=hashed)
        return compress_tree(Path(self.location), options)


def _report(line: str) -> None:
    """The summary line, as collectstatic prints its own: to the stdout it was given
    (`call_command(..., stdout=buf)`), and not at all with `-v0`.

    Django passes neither to a storage's post_process, so they are taken from the
    management command that is iterating it (collectstatic's `collect`, a caller frame):
    without one (the storage used by other code), the line goes to sys.stdout.
    """
    frame = sys._getframe(1)
    while frame is not None:
        command = frame.f_locals.get("self")
        if isinstance(command, BaseCommand):
            if getattr(command, "verbosity", 1) >= 1:
                command.stdout.write(line)
            return
        frame = frame.f_back
    print(line, file=sys.stdout)


# (root, the manifest's mtime) -> {name: integrity}: read once per collectstatic, not per tag.
_INTEGRITY_CACHE: dict[Path, tuple[int, dict[str, str]]] = {}


def _integrity_values(root: Path) -> dict[str, str]:
    try:
        mtime = manifest_path(root).stat().st_mtime_ns
    except OSError:
        return {}
    cached = _INTEGRITY_CACHE.get(root)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    try:
        files = read(root)["files"]
    except (ManifestError, OSError, KeyError):
        return {}
    values = {name: entry["integrity"] for name, entry in files.items()
              if isinstance(entry, dict) and isinstance(entry.get("integrity"), str)}
    _INTEGRITY_CACHE[root] = (mtime, values)
    return values

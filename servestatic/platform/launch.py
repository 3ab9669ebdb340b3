"""What the container image and the buildpack run: `servestatic serve`, unless asked otherwise.

The image's entrypoint (entrypoint/servestatic-entrypoint) only execs
`servestatic launch -- ARGS`; the decisions are made here, as official images
make them:

- no arguments, or options first (`docker run IMAGE --prefix /static/`): serve,
  with those options;
- a servestatic subcommand first (`healthcheck`, `compress`, `check`, `version`,
  `serve`): that subcommand;
- anything else (`docker run IMAGE sh`): that command, in place of servestatic.

Before serving, a SERVESTATIC_ROOT (or mount) without a manifest that the server may write
(a volume mounted at run time) is compressed, with a warning: every later request gains.
A read-only one is served as it is; `serve` scans it and says so itself.
Everything runs in this process, so gunicorn's master keeps PID 1 and gets
SIGTERM directly.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from servestatic.config.settings import Settings

log = logging.getLogger("servestatic")


def launch(arguments: list[str], app: Callable[..., Any], subcommands: Collection[str]) -> NoReturn:
    """Run `arguments` as the entrypoint was given them. `app` is the `servestatic` command
    (servestatic/cli.py, which calls this) and `subcommands` its subcommands' names."""
    first = arguments[0] if arguments else ""
    if first in subcommands:
        app(arguments, prog_name="servestatic")
    elif first == "" or first.startswith("-"):
        if "--help" not in arguments:
            compress_if_unprepared()
        app(["serve", *arguments], prog_name="servestatic")
    else:
        run_command(arguments)
    raise AssertionError("unreachable: typer exits")  # pragma: no cover


def run_command(arguments: list[str]) -> NoReturn:
    """Replace this process with the command, as a shell would; 127 when there is none."""
    try:
        os.execvp(arguments[0], arguments)
    except OSError as error:
        print(f"servestatic: error: {arguments[0]}: {error.strerror}; expected a servestatic "
              "subcommand, an option of `servestatic serve`, or a command", file=sys.stderr)
        sys.exit(127 if isinstance(error, FileNotFoundError) else 126)


def compress_if_unprepared() -> None:
    """Compress each root (SERVESTATIC_ROOT, or every SERVESTATIC_MOUNTS directory) in place
    if it has no manifest and may be written.

    Only roots the environment names (the image sets SERVESTATIC_ROOT=/srv/www, the
    buildpack its static directories): the default, the working directory, may be
    anything. Anything wrong here (a bad setting, a failed compression) is left for
    `serve` to report or live with: it serves an uncompressed root correctly, only slower.
    """
    from servestatic.config.settings import SettingError, load_settings
    from servestatic.site.names import MANIFEST_NAME

    if not (os.environ.get("SERVESTATIC_ROOT") or os.environ.get("SERVESTATIC_MOUNTS")):
        return
    try:
        settings = load_settings()
    except SettingError:
        return  # serve names the setting and exits 2
    for mount in settings.all_mounts:
        root = mount.root
        if root.is_dir() and not (root / MANIFEST_NAME).exists() and os.access(root, os.W_OK):
            _compress_before_serving(root, settings)


def _compress_before_serving(root: Path, settings: Settings) -> None:
    logging.basicConfig(level="INFO", format="servestatic: %(levelname)s: %(message)s", stream=sys.stderr)
    log.warning("%s has no manifest; compressing it before serving (run 'servestatic compress %s' "
                "at build time instead)", root, root)
    from servestatic.buildtime.compress import CompressError, CompressOptions, compress_tree

    try:
        summary = compress_tree(root, CompressOptions.from_settings(settings))
    except (CompressError, OSError) as error:
        log.warning("compressing %s failed (%s); serving it as it is", root, error)
        return
    print(summary.line(), file=sys.stderr)

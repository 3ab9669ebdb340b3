"""The `servestatic` command: compress, serve, check, diff, integrity.

Options are generated from the settings table in `servestatic.config.settings`, so a
setting is declared once and shows up here with its environment variable. Every
option is read as text and parsed by the same code that parses the environment,
so a wrong flag and a wrong variable fail with the same one-line message.
"""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from servestatic import __version__
from servestatic.config.logs import configure_logging
from servestatic.config.settings import SETTINGS, SettingError, Settings, load_settings

if TYPE_CHECKING:
    from servestatic.buildtime.compress import CompressOptions, Summary

app = typer.Typer(
    help="Serve a Python web app's static files correctly and fast, as the origin behind a CDN.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

RootArgument = Annotated[
    str | None,
    typer.Argument(help="Static root directory (env SERVESTATIC_ROOT; default: .)", show_default=False),
]


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one line to stderr and return the Exit to raise."""
    typer.echo(f"servestatic: error: {message}", err=True)
    return typer.Exit(code)


def _setting_parameter(setting: Any) -> inspect.Parameter:
    help_text = f"{setting.help} (env {setting.env}; default: {setting.default or 'unset'})"
    is_flag = setting.default in {"true", "false"}
    if is_flag:
        name = setting.option[2:]
        option = typer.Option(f"--{name}/--no-{name}", help=help_text, show_default=False)
        annotation: Any = Annotated[bool | None, option]
    elif setting.repeatable:
        option = typer.Option(setting.option, help=help_text + "; repeat the flag for more",
                              show_default=False)
        annotation = Annotated[list[str] | None, option]
    else:
        option = typer.Option(setting.option, help=help_text, show_default=False)
        annotation = Annotated[str | None, option]
    return inspect.Parameter(setting.name, inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=annotation)


def with_setting_options(
    command: str, *extra: inspect.Parameter
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command one option per setting that applies to it (ROOT is positional),
    then the command's own `extra` options."""

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        parameters = [
            inspect.Parameter("root", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None,
                              annotation=RootArgument)
        ]
        parameters += [
            _setting_parameter(setting)
            for setting in SETTINGS
            if command in setting.commands and setting.name != "root"
        ]
        parameters += extra
        function.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        function.__annotations__ = {p.name: p.annotation for p in parameters}
        return function

    return decorate


def settings_from(options: dict[str, Any]) -> Settings:
    """Parse CLI options over the environment; a bad value exits with one line."""
    overrides: dict[str, str | None] = {}
    for name, value in options.items():
        if isinstance(value, bool):
            overrides[name] = "true" if value else "false"
        elif isinstance(value, list):
            overrides[name] = ",".join(value) or None
        else:
            overrides[name] = value
    try:
        return load_settings(overrides=overrides)
    except SettingError as error:
        raise fail(str(error)) from None


@app.command(help="Compress ROOT (or each --mount directory) in place (.br, .gz, optional .zst) "
                  "and write its manifest.")
@with_setting_options("compress", inspect.Parameter(
    "json", inspect.Parameter.KEYWORD_ONLY, default=False,
    annotation=Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")],
))
def compress(**options: Any) -> None:
    from servestatic.buildtime.compress import CompressError, CompressOptions

    as_json = options.pop("json", False)
    settings = settings_from(options)
    compress_options = CompressOptions.from_settings(settings)
    configure_logging()
    results = []
    try:
        for mount in settings.all_mounts:
            results.append((mount, _compress_one(mount.root, compress_options, show_bar=not as_json)))
    except CompressError as error:
        raise fail(str(error)) from None
    if not results:  # every mount is live: nothing is compressed at build time
        raise fail("no mount to compress: a live: mount changes at run time and is never compressed")
    several = len(results) > 1
    if as_json:
        if several:
            typer.echo(json.dumps({"mounts": [{"prefix": mount.prefix, "root": str(mount.root),
                                               **summary.as_dict()} for mount, summary in results]},
                                  indent=1))
        else:
            typer.echo(json.dumps(results[0][1].as_dict(), indent=1))
    else:
        for mount, summary in results:
            typer.echo(f"{mount.prefix}={mount.root}: {summary.line()}" if several else summary.line())
    errors = [line for _mount, summary in results for line in summary.errors]
    for line in errors:
        typer.echo(f"servestatic: error: {line}", err=True)
    if errors:
        raise typer.Exit(1)


def _compress_one(root: Path, options: CompressOptions, show_bar: bool) -> Summary:
    """compress_tree on one root, with a progress bar on a terminal."""
    from servestatic.buildtime.compress import compress_tree

    if not (show_bar and sys.stderr.isatty()):
        return compress_tree(root, options)
    from rich.progress import Progress

    with Progress(transient=True) as progress:
        task = progress.add_task(f"compressing {root}", total=None)
        return compress_tree(
            root, options, lambda done, total: progress.update(task, completed=done, total=total))


@app.command(help="Serve ROOT with gunicorn; requests that are not static hits go to SERVESTATIC_APP.")
@with_setting_options("serve")
def serve(**options: Any) -> None:
    settings = settings_from(options)  # first: importing gunicorn reads WEB_CONCURRENCY
    from servestatic.fronts.prepare import StartupError
    from servestatic.server.gunicornapp import run

    configure_logging(settings.log_level)
    try:
        run(settings)
    except StartupError as error:
        raise fail(str(error)) from None


@app.command(help="Check the settings, the root, the manifest and the app, and hold the mounts against a "
                  "Django project's STATIC_URL/STATIC_ROOT and the pages' static links; exit non-zero "
                  "on a problem, one line each.")
@with_setting_options("check")
def check(**options: Any) -> None:
    settings = settings_from(options)  # first: importing gunicorn reads WEB_CONCURRENCY
    from servestatic.fronts.prepare import StartupError, prepare
    from servestatic.server.gunicornapp import configure

    configure_logging(settings.log_level)
    from servestatic.fronts.checks import CheckError, findings

    try:
        configure(settings)
        application = prepare(settings)
        found = findings(settings, application)
    except (StartupError, CheckError) as error:
        raise fail(str(error)) from None
    for finding in found:  # one line each, naming the setting to change
        typer.echo(f"servestatic: error: {finding.line()}", err=True)
    if found:
        raise typer.Exit(1)
    typer.echo(f"ok: {application.table.describe()}")


@app.command(help="Ask the running server's health endpoint; exit 0 when it answers 200. "
                  "For container HEALTHCHECKs: needs no curl and honours PORT and SERVESTATIC_BIND.")
@with_setting_options("healthcheck")
def healthcheck(**options: Any) -> None:
    from servestatic.platform.healthcheck import HealthCheckError, check_health

    settings = settings_from(options)
    try:
        check_health(settings)
    except HealthCheckError as error:
        raise fail(str(error), code=1) from None


@app.command(help="List the URL paths whose served bytes differ between two builds: the purge "
                  "list of a deploy. OLD and NEW are manifests or the roots that hold them.")
def diff(
    old: Annotated[Path, typer.Argument(metavar="OLD", help="The previous build's manifest (or its root).",
                                        show_default=False)],
    new: Annotated[Path, typer.Argument(metavar="NEW", help="The new build's manifest (or its root).",
                                        show_default=False)],
    prefix: Annotated[str | None, typer.Option(
        help="URL path the root is served under (env SERVESTATIC_PREFIX; default: /).",
        show_default=False)] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print {changed, added, removed} as JSON instead of one path per line.")] = False,
    as_tags: Annotated[bool, typer.Option(
        "--tags", help="Print the cache tags to purge (SERVESTATIC_CACHE_TAG_HEADER), one per line: "
                       "the directories of what changed, and 404 if files were added.")] = False,
) -> None:
    from servestatic.buildtime.diff import diff_manifests
    from servestatic.site.manifest import ManifestError

    settings = settings_from({"prefix": prefix})
    try:
        result = diff_manifests(old, new, settings.prefix)
    except ManifestError as error:
        raise fail(str(error)) from None
    if as_json:
        typer.echo(json.dumps(result.as_dict(), indent=1))
    elif as_tags:
        for tag in result.tags():
            typer.echo(tag)
    else:
        for url in result.urls():
            typer.echo(url)


@app.command(help="Print the Subresource Integrity value (sha384-...) of each PATH, as recorded by "
                  "compress: one 'VALUE PATH' line each. A PATH is relative to the root, or a file in it.")
def integrity(
    paths: Annotated[list[str], typer.Argument(metavar="PATH...", show_default=False,
                                               help="Files, relative to the root or inside it.")],
    root: Annotated[str | None, typer.Option(
        help="The compressed directory (env SERVESTATIC_ROOT; default: the setting's).",
        show_default=False)] = None,
) -> None:
    from servestatic.buildtime.integrity import IntegrityError, integrity_values
    from servestatic.site.manifest import ManifestError

    settings = settings_from({"root": root})
    try:
        values = integrity_values(settings.root, paths)
    except (IntegrityError, ManifestError) as error:
        raise fail(str(error), code=1) from None
    for given, value in values:
        typer.echo(f"{value} {given}")


@app.command(help="Print the version.")
def version() -> None:
    typer.echo(__version__)


@app.command(hidden=True, help="The container image's and the buildpack's entry point: "
                               "servestatic serve, a subcommand, or another command.")
def launch(arguments: Annotated[list[str] | None, typer.Argument()] = None) -> None:
    from servestatic.platform.launch import launch as run

    run(arguments or [], app, subcommands())


def subcommands() -> set[str]:
    """The names `servestatic` answers to, but the hidden launcher's own."""
    group = typer.main.get_command(app)
    return set(getattr(group, "commands", {})) - {"launch"}


def main() -> None:
    app()

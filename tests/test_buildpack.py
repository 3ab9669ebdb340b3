"""The buildpack, driven by the real CNB lifecycle: detector, builder, launcher.

scripts/install/lifecycle.sh builds the lifecycle from its Go module and creates
the unprivileged `cnb` user; the lifecycle refuses to run as root, so when the
tests run as root every phase runs as that user through setpriv. Each workspace
lives under /tmp (pytest's tmp_path is private to root) and holds the layout a
platform gives the lifecycle: app/, layers/, platform/, a buildpack store, order.toml.
tests/buildpacks/cpython stands in for a Python buildpack.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from platform import machine

import httpx
import pytest
from packaging.requirements import Requirement
from packaging.tags import compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_wheel_filename

from servestatic.platform.cnb import (
    SUPPORTED_PYTHONS,
    BuildError,
    buildable_settings,
    settings_from_build_env,
    shipped_wheel_dirs,
    target_dir_name,
)
from servestatic.platform.cnbpackage import platform_tags, requirements
from tests.support import REPO, needs
from tests.support.cnb import (
    BP_ID,
    BP_LAYERS,
    BP_VERSION,
    BUILDPACK,
    CNB_USER,
    CPYTHON,
    LIFECYCLE,
    PLATFORM_API,
    PY_ID,
    PY_VERSION,
    Workspace,
    compress_summaries,
    compress_summary,
    totals,
)
from tests.support.deltas import available_dictionary, decode_dcz, write_release
from tests.support.django import (
    assert_site_root_files_come_from_servestatic,
    assert_static_files_come_from_servestatic,
    assert_views_come_from_django,
)
from tests.support.server import free_port
from tests.support.site import copy_site

pytestmark = pytest.mark.buildpack

# A tiny WSGI app the static files fall through to (SERVESTATIC_APP=hello:application).
HELLO_APP = '''\
def application(environ, start_response):
    body = b"hello from the app at " + environ["PATH_INFO"].encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
'''


# The app's own web process, as a Procfile names it.
PROCFILE_WEB = "gunicorn --bind 0.0.0.0:$PORT --workers 1 hello:application"


def manifest_hash(root: Path, name: str) -> str:
    return json.loads((root / ".servestatic-manifest.json").read_text())["files"][name]["hash"]


@pytest.fixture(scope="module")
def lifecycle_user() -> pwd.struct_passwd | None:
    needs((LIFECYCLE / "builder").exists() and (LIFECYCLE / "launcher").exists(),
          "the CNB lifecycle is not built (scripts/install/lifecycle.sh builds it)")
    if os.geteuid() != 0:
        return None
    try:
        user = pwd.getpwnam(CNB_USER)
    except KeyError:
        user = None
    needs(user is not None, f"user {CNB_USER!r} is missing (scripts/install/lifecycle.sh creates it)")
    needs(shutil.which("setpriv") is not None, "setpriv is missing (util-linux)")
    needs(Path("/usr/bin/python3").exists(), "/usr/bin/python3 (the stand-in CPython) is missing")
    return user


@pytest.fixture(scope="module")
def store(lifecycle_user: pwd.struct_passwd | None) -> Iterator[Path]:
    """A buildpack store (<id with / as _>/<version>/) holding packaged copies of both buildpacks.

    Copies, as pack makes them, so the unprivileged user never has to read the checkout.
    """
    subprocess.run([os.fspath(BUILDPACK / "package")], check=True, timeout=600)
    directory = Path(tempfile.mkdtemp(prefix="servestatic-cnb-store-"))
    directory.chmod(0o755)
    shutil.copytree(BUILDPACK, directory / BP_LAYERS / BP_VERSION)
    shutil.copytree(CPYTHON, directory / PY_ID.replace("/", "_") / PY_VERSION)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def workspace(lifecycle_user: pwd.struct_passwd | None, store: Path) -> Iterator[Workspace]:
    root = Path(tempfile.mkdtemp(prefix="servestatic-cnb-"))
    yield Workspace(root, lifecycle_user, store).setup()
    shutil.rmtree(root, ignore_errors=True)


# --- detect


def planned_root(workspace: Workspace) -> str:
    """The static root bin/detect put into the build plan."""
    (servestatic,) = [e for e in workspace.plan()["entries"] if e["requires"][0]["name"] == "servestatic"]
    return servestatic["requires"][0]["metadata"]["root"]


# Every layout the buildpack's README names; each runs bin/detect through the real detector.


@pytest.mark.parametrize("directory", ["staticfiles", "public", "dist", "build", "static"])
def test_detect_passes_on_a_conventional_static_root(workspace: Workspace, directory: str) -> None:
    (workspace.app / directory).mkdir()
    (workspace.app / directory / "a.css").write_text("body{}")
    workspace.detect()
    assert workspace.group_ids() == [PY_ID, BP_ID]
    entries = {entry["requires"][0]["name"]: entry for entry in workspace.plan()["entries"]}
    assert entries["servestatic"]["requires"][0]["metadata"] == {"root": directory}
    # With a cpython provider in the group, the first alternative (Python from the plan) wins.
    assert entries["cpython"]["requires"][0]["metadata"] == {"build": True, "launch": True}
    assert entries["cpython"]["providers"][0]["id"] == PY_ID


def test_detect_takes_the_first_static_site_directory(workspace: Workspace) -> None:
    for directory in ("static", "build", "dist"):
        (workspace.app / directory).mkdir()
    workspace.detect()
    assert planned_root(workspace) == "dist"


@pytest.mark.parametrize("directories", [(), ("static",), ("staticfiles",), ("static", "staticfiles"),
                                         ("static", "public", "build")])
def test_detect_serves_collectstatic_output_for_a_django_project(
        workspace: Workspace, directories: tuple[str, ...]) -> None:
    """static/ in a Django project holds STATICFILES_DIRS sources (unhashed, without the
    admin's assets): the root is collectstatic's output, made at build time if missing."""
    (workspace.app / "manage.py").write_text("")
    for directory in directories:
        (workspace.app / directory).mkdir()
        (workspace.app / directory / "site.css").write_text("body{}")
    workspace.detect()
    assert planned_root(workspace) == "staticfiles"


def test_detect_django_with_its_own_static_root(workspace: Workspace) -> None:
    (workspace.app / "manage.py").write_text("")
    (workspace.app / "static").mkdir()
    workspace.set_env("BP_SERVESTATIC_ROOT", "collected")
    workspace.detect()
    assert planned_root(workspace) == "collected"


def test_detect_serves_a_flask_apps_static_folder(workspace: Workspace) -> None:
    (workspace.app / "app.py").write_text("from flask import Flask\napp = Flask(__name__)\n")
    (workspace.app / "templates").mkdir()
    (workspace.app / "static").mkdir()
    (workspace.app / "static" / "site.css").write_text("body{}")
    workspace.detect()
    assert planned_root(workspace) == "static"


def test_detect_fails_without_a_static_root(workspace: Workspace) -> None:
    (workspace.app / "app.py").write_text(HELLO_APP)
    (workspace.app / "assets.txt").write_text("a file, not a directory")
    result = workspace.detect(check=False, debug=True)
    assert result.returncode == 20, result.stdout  # the lifecycle's "no group passed"
    assert f"fail: {BP_ID}@{BP_VERSION}" in result.stdout
    assert "servestatic: no static root (staticfiles/, public/, dist/, build/, static/, " \
           "a Django manage.py, or BP_SERVESTATIC_ROOT)" in result.stdout
    assert not (workspace.layers / "group.toml").exists()


def test_detect_uses_bp_servestatic_root(workspace: Workspace) -> None:
    (workspace.app / "public").mkdir()
    (workspace.app / "web" / "assets").mkdir(parents=True)
    workspace.set_env("BP_SERVESTATIC_ROOT", "web/assets/")
    workspace.detect()
    assert planned_root(workspace) == "web/assets"


@pytest.mark.parametrize("value", ["../outside", "/etc", "a/../../b"])
def test_detect_rejects_a_bp_servestatic_root_outside_the_app(workspace: Workspace, value: str) -> None:
    (workspace.app / "public").mkdir()
    workspace.set_env("BP_SERVESTATIC_ROOT", value)
    result = workspace.detect(check=False)
    assert result.returncode == 21, result.stdout  # the lifecycle's "a buildpack erred"
    assert f"servestatic: error: BP_SERVESTATIC_ROOT: got '{value}'" in result.stdout
    assert f"err:  {BP_ID}@{BP_VERSION} (1)" in result.stdout


def test_a_missing_bp_servestatic_root_fails_the_build(workspace: Workspace) -> None:
    """It may be made by an earlier buildpack at build time, so detect lets it pass."""
    workspace.set_env("BP_SERVESTATIC_ROOT", "missing")
    workspace.detect()
    result = workspace.build(check=False)
    assert result.returncode != 0
    assert "servestatic: error: static root 'missing' is not a directory in the app" in result.stdout


def test_detect_and_build_without_a_cpython_provider(workspace: Workspace) -> None:
    """After a Python buildpack that puts nothing in the plan, the [[or]] alternative
    passes, and the build uses whatever python3 is on PATH."""
    workspace.group = [(BP_ID, BP_VERSION)]
    workspace.setup()
    copy_site(workspace.app / "dist")
    workspace.detect()
    assert workspace.group_ids() == [BP_ID]
    names = [entry["requires"][0]["name"] for entry in workspace.plan()["entries"]]
    assert names == ["servestatic"]
    result = workspace.build()
    assert totals(compress_summary(result.stdout), "compressed") > 0
    assert (workspace.app / "dist" / "index.html.br").exists()


# --- build-time settings


def test_readme_documents_every_bp_variable() -> None:
    readme = (BUILDPACK / "README.md").read_text()
    documented = set(re.findall(r"`(BP_SERVESTATIC_[A-Z_]+)`", readme))
    assert documented == {"BP_" + setting.env for setting in buildable_settings()}


def test_build_settings_are_checked_like_run_time_ones() -> None:
    assert settings_from_build_env({"BP_SERVESTATIC_ZSTD": "yes", "SERVESTATIC_SPA": "x"}) == {
        "SERVESTATIC_ZSTD": "yes"}
    with pytest.raises(BuildError, match=r"^BP_SERVESTATIC_MAX_AGE: got 'soon'; expected a whole number"):
        settings_from_build_env({"BP_SERVESTATIC_MAX_AGE": "soon"})
    with pytest.raises(BuildError, match=r"^BP_SERVESTATIC_MAXAGE: not a servestatic build setting"):
        settings_from_build_env({"BP_SERVESTATIC_MAXAGE": "60"})
    with pytest.raises(BuildError, match=r"^BP_SERVESTATIC_PORT: not a servestatic build setting"):
        settings_from_build_env({"BP_SERVESTATIC_PORT": "80"})


def test_build_fails_in_one_line_on_a_bad_setting(workspace: Workspace) -> None:
    (workspace.app / "public").mkdir()
    workspace.set_env("BP_SERVESTATIC_CORS", "example.com")
    workspace.detect()
    result = workspace.build(check=False)
    assert result.returncode != 0
    errors = [line for line in result.stdout.splitlines() if line.startswith("servestatic: error:")]
    assert errors == ["servestatic: error: BP_SERVESTATIC_CORS: got 'example.com'; expected '*', 'off', "
                      "or comma-separated origins like https://example.com"]
    assert not (workspace.layers / BP_LAYERS / "servestatic").exists()


# --- build and launch


@dataclass
class Built:
    workspace: Workspace
    output: str


@pytest.fixture(scope="module")
def built(lifecycle_user: pwd.struct_passwd | None, store: Path) -> Iterator[Built]:
    """The example site as public/ of an app with its own WSGI app and a Procfile that
    runs it, detected and built once."""
    root = Path(tempfile.mkdtemp(prefix="servestatic-cnb-built-"))
    workspace = Workspace(root, lifecycle_user, store).setup()
    copy_site(workspace.app / "public")
    (workspace.app / "hello.py").write_text(HELLO_APP)
    (workspace.app / "Procfile").write_text(f"release: true\nweb: {PROCFILE_WEB}\n")
    workspace.set_env("BP_SERVESTATIC_APP", "hello:application")
    workspace.set_env("BP_SERVESTATIC_MAX_AGE", "120")
    workspace.detect()
    result = workspace.build()
    yield Built(workspace, result.stdout)
    shutil.rmtree(root, ignore_errors=True)


def test_build_writes_the_layers(built: Built) -> None:
    layers = built.workspace.layers / BP_LAYERS
    venv = built.workspace.layer_toml("servestatic")
    assert venv["types"] == {"launch": True, "build": False, "cache": True}
    assert len(venv["metadata"]["key"]) == 64
    assert os.access(layers / "servestatic" / "bin" / "servestatic", os.X_OK)
    assert os.access(layers / "servestatic" / "bin" / "gunicorn", os.X_OK)
    assert built.workspace.layer_toml("compress-cache")["types"] == {
        "launch": False, "build": False, "cache": True}
    assert any((layers / "compress-cache").rglob("*")), "the compression cache layer is empty"
    assert built.workspace.layer_toml("launch-env")["types"]["launch"] is True


def test_build_writes_launch_env_defaults(built: Built) -> None:
    env_dir = built.workspace.layers / BP_LAYERS / "launch-env" / "env.launch"
    defaults = {path.name: path.read_text() for path in env_dir.iterdir()}
    assert defaults == {
        "SERVESTATIC_ROOT.default": os.fspath((built.workspace.app / "public").resolve()),
        "SERVESTATIC_APP.default": "hello:application",
        "SERVESTATIC_MAX_AGE.default": "120",
    }


def test_build_writes_a_direct_default_web_process(built: Built) -> None:
    launch = tomllib.loads((built.workspace.layers / BP_LAYERS / "launch.toml").read_text())
    web = launch["processes"][0]
    entrypoint = built.workspace.layers / BP_LAYERS / "servestatic" / "bin" / "servestatic-entrypoint"
    assert web == {"type": "web", "command": [os.fspath(entrypoint)], "args": [], "default": True}
    assert entrypoint.read_bytes() == (REPO / "entrypoint" / "servestatic-entrypoint").read_bytes()
    metadata = tomllib.loads((built.workspace.layers / "config" / "metadata.toml").read_text())
    assert metadata["buildpack-default-process-type"] == "web"
    (exported,) = [process for process in metadata["processes"] if process["type"] == "web"]
    assert exported["direct"] is True  # no shell between launcher and servestatic


def test_build_keeps_the_procfile_web_process_as_app(built: Built) -> None:
    """servestatic's process replaces the app's `web` (it passes what is not a static file
    on to BP_SERVESTATIC_APP); the app's own command stays in the image as `app`, and
    the build log says so."""
    launch = tomllib.loads((built.workspace.layers / BP_LAYERS / "launch.toml").read_text())
    assert [process["type"] for process in launch["processes"]] == ["web", "app"]
    assert launch["processes"][1] == {"type": "app", "command": ["bash", "-c", PROCFILE_WEB], "args": [],
                                      "default": False}
    warnings = [line for line in built.output.splitlines() if line.startswith("servestatic: warning:")]
    assert warnings == ["servestatic: warning: the Procfile's web process is kept as process type 'app'; "
                        "'web' runs servestatic, which passes what is not a static file to hello:application"]


def test_the_procfile_web_process_still_runs_as_app(built: Built) -> None:
    """Started by name, as a platform starts a non-default process; the launcher puts the
    servestatic layer's bin/ (with gunicorn) on PATH."""
    app = start_web(built.workspace, "app", ready_path="/")
    try:
        response = httpx.get(app.base + "/robots.txt")
        assert response.text == "hello from the app at /robots.txt"  # the app, not the static file
        assert "etag" not in response.headers
    finally:
        stop(app)


def test_build_compresses_the_static_root(built: Built) -> None:
    public = built.workspace.app / "public"
    summary = compress_summary(built.output)
    assert summary["errors"] == []
    assert totals(summary, "compressed") > 0
    assert totals(summary, "from_cache") == 0
    assert (public / ".servestatic-manifest.json").is_file()
    for name in ("index.html", "assets/app-3fA9c1bd.js", "css/site.0123456789ab.css"):
        assert (public / f"{name}.br").stat().st_size < (public / name).stat().st_size
        assert (public / f"{name}.gz").stat().st_size < (public / name).stat().st_size


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


@dataclass
class Launched:
    base: str
    process: subprocess.Popen[str]


def start_web(workspace: Workspace, process_type: str = "web", ready_path: str = "/healthz") -> Launched:
    """A process of the image (by default servestatic's `web`), started the way an exported
    image starts it: the launcher run as /cnb/process/<type> (here a symlink so named)."""
    process_dir = workspace.root / "process"
    process_dir.mkdir(exist_ok=True)
    (process_dir / process_type).symlink_to(LIFECYCLE / "launcher")
    port = free_port()
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "CNB_PLATFORM_API": PLATFORM_API,
        "CNB_LAYERS_DIR": os.fspath(workspace.layers),
        "CNB_APP_DIR": os.fspath(workspace.app),
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
    }
    workspace.hand_over()
    process = subprocess.Popen(workspace.as_user([os.fspath(process_dir / process_type)]),
                               cwd=workspace.app, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise AssertionError(f"the {process_type} process exited:\n{process.communicate()[0]}")
        try:
            if httpx.get(base + ready_path, timeout=1).status_code == 200:
                return Launched(base, process)
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"no answer on {ready_path} within 30 s:\n{process.communicate()[0]}")
        time.sleep(0.1)


def stop(launched: Launched) -> None:
    if launched.process.poll() is None:
        launched.process.kill()
        launched.process.communicate(timeout=30)


@pytest.fixture(scope="module")
def launched(built: Built) -> Iterator[Launched]:
    web = start_web(built.workspace)
    yield web
    stop(web)


def test_launch_serves_brotli_with_immutable_caching(launched: Launched) -> None:
    response = httpx.get(launched.base + "/assets/app-3fA9c1bd.js",
                         headers={"Accept-Encoding": "br, gzip"})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "br"
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["vary"] == "Accept-Encoding"
    assert "function" in response.text  # httpx decoded the brotli body back to JavaScript


def test_launch_uses_build_time_settings(launched: Launched) -> None:
    response = httpx.get(launched.base + "/robots.txt")
    assert response.status_code == 200
    # BP_SERVESTATIC_MAX_AGE
    assert response.headers["cache-control"] == "public, max-age=120, stale-if-error=86400"


def test_launch_health_and_chained_app(launched: Launched) -> None:
    health = httpx.get(launched.base + "/healthz")
    assert (health.status_code, health.text.strip()) == (200, "ok")
    assert health.headers["cache-control"] == "no-store"
    dynamic = httpx.get(launched.base + "/hello/")
    assert dynamic.status_code == 200
    assert dynamic.text == "hello from the app at /hello/"


def test_launch_stops_cleanly_on_sigterm(launched: Launched) -> None:
    """The launcher and the entrypoint both exec, so the process the platform started is
    gunicorn's master itself and gets SIGTERM first-hand. (Stops the process the tests
    above used, so it comes after them.)"""
    launched.process.send_signal(signal.SIGTERM)
    output, _ = launched.process.communicate(timeout=40)
    assert launched.process.returncode == 0, output
    assert "Listening at: http://0.0.0.0:" in output
    assert f"({launched.process.pid})" in output.split("Listening at:")[1].splitlines()[0]


# The lifecycle writes every layer, the cache's too, with this mtime (archive.NormalizedModTime).
NORMALIZED_MTIME = datetime(1980, 1, 1, 0, 0, 1, tzinfo=UTC).timestamp()


def restore_only_the_cache(workspace: Workspace) -> None:
    """Leave in the layers directory only what a restorer brings back for the next build:
    the cache=true layers and their layer.toml, every file's mtime reset to the lifecycle's
    normalized one, as its cache tarballs hold them."""
    for path in workspace.layers.iterdir():
        if path.name != BP_LAYERS:
            remove(path)
    ours = workspace.layers / BP_LAYERS
    cached = {toml.stem for toml in ours.glob("*.toml")
              if tomllib.loads(toml.read_text()).get("types", {}).get("cache")}
    for path in ours.iterdir():
        if path.name.removesuffix(".toml") not in cached:
            remove(path)
    for path in [*ours.rglob("*")]:
        if not path.is_symlink():
            os.utime(path, (NORMALIZED_MTIME, NORMALIZED_MTIME))


def test_rebuild_with_restored_cache_compresses_nothing(built: Built) -> None:
    """A second build of unchanged sources in the same place, given only what the restorer
    restores (the cache=true layers and their layer.toml): the venv is reused and every
    variant comes from the compression cache. (Reuses the built workspace, so it runs last.)"""
    workspace = built.workspace
    first = compress_summary(built.output)
    restore_only_the_cache(workspace)
    assert sorted(p.name for p in (workspace.layers / BP_LAYERS).iterdir()) == [
        "compress-cache", "compress-cache.toml", "servestatic", "servestatic.toml"]
    shutil.rmtree(workspace.app / "public")
    copy_site(workspace.app / "public")

    workspace.detect()
    result = workspace.build()
    summary = compress_summary(result.stdout)
    assert "reusing the servestatic layer" in result.stdout
    assert totals(summary, "compressed") == 0
    assert totals(summary, "from_cache") == totals(first, "compressed") > 0
    assert (workspace.app / "public" / "index.html.br").exists()

    # One file changed: only it is compressed, and the cache forgets its old content.
    cache = workspace.layers / BP_LAYERS / "compress-cache"
    index = workspace.app / "public" / "index.html"
    old_hash = manifest_hash(workspace.app / "public", "index.html")
    assert old_hash in {path.name for path in cache.rglob("*")}
    index.write_text(index.read_text().replace("</body>", "<p>changed</p></body>"))
    result = workspace.build()
    summary = compress_summary(result.stdout)
    assert {name: stats["compressed"] for name, stats in summary["encodings"].items()} == {
        "br": 1, "gzip": 1}
    cached = {path.name for path in cache.rglob("*") if path.is_file()}
    assert old_hash not in cached
    assert manifest_hash(workspace.app / "public", "index.html") in cached


def test_rebuilds_serve_a_changed_bundle_as_a_delta(lifecycle_user: pwd.struct_passwd | None,
                                                   store: Path) -> None:
    """Three releases of an app, each built with only the cache layers of the build before
    restored (mtimes normalized, as the lifecycle restores them): the compress-cache layer
    keeps each release's bundle, so each later build makes the changed bundle's dcz delta
    against the release before (with one earlier version kept, the one before must win over
    older ones by when it was seen, not by mtime), and the launched image serves it."""
    root = Path(tempfile.mkdtemp(prefix="servestatic-cnb-deltas-"))
    try:
        workspace = Workspace(root, lifecycle_user, store).setup()
        workspace.set_env("BP_SERVESTATIC_DELTA_VERSIONS", "1")
        releases = []
        for number in (1, 2, 3):
            if number > 1:
                restore_only_the_cache(workspace)
                shutil.rmtree(workspace.app / "public")
            releases.append(write_release(workspace.app / "public", number))
            workspace.detect()
            deltas = compress_summary(workspace.build().stdout)["deltas"]
            assert (deltas["deltas"], deltas["made"]) == ((0, 0) if number == 1 else (1, 1)), deltas
        _, second, third = releases
        bundle = json.loads((third.root / ".servestatic-manifest.json").read_text())["files"][third.name]
        assert list(bundle["deltas"]) == [second.dictionary[1:-1]]  # its SHA-256, base64
        web = start_web(workspace)
        try:
            asking = {"Accept-Encoding": "dcz, br, gzip", "Available-Dictionary": second.dictionary}
            with httpx.stream("GET", web.base + "/" + third.name, headers=asking) as response:
                body = b"".join(response.iter_raw())
            assert (response.status_code, response.headers["content-encoding"]) == (200, "dcz")
            assert decode_dcz(body, second.data) == third.data
            br = httpx.get(web.base + "/" + third.name, headers={"Accept-Encoding": "dcz, br, gzip"})
            assert br.headers["content-encoding"] == "br"
            print(f"\ndelta {len(body):,} bytes, br {br.headers['content-length']}, file {len(third.data):,}")
        finally:
            stop(web)
    finally:
        shutil.rmtree(root, ignore_errors=True)


# --- every supported CPython, on the machine's CPU; the SBOM of what was installed


def pyenv_prefix(version: str) -> Path:
    """pyenv's newest CPython `version` (3.10 to 3.13 are on these machines)."""
    versions = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = sorted(versions.glob(f"{version}.*"),
                   key=lambda path: [int(n) for n in re.findall(r"\d+", path.name)])
    needs(bool(found) and (found[-1] / "bin" / f"python{version}").exists(),
          f"pyenv has no CPython {version} (expected in {versions})")
    return found[-1]


@pytest.fixture(scope="module")
def cpython_copy() -> Iterator[Callable[[str], Path]]:
    """`cpython_copy(version)`: the python executable of a copy of pyenv's CPython that the
    unprivileged user can read (pyenv lives in root's home), without its test suite."""
    directory = Path(tempfile.mkdtemp(prefix="servestatic-cnb-cpython-"))
    directory.chmod(0o755)

    def copy(version: str) -> Path:
        prefix = pyenv_prefix(version)
        target = directory / prefix.name
        if not target.exists():
            shutil.copytree(prefix, target, symlinks=True, ignore=shutil.ignore_patterns(
                "test", "idlelib", "tkinter", "turtledemo", "__pycache__"))
        return target / "bin" / f"python{version}"

    yield copy
    shutil.rmtree(directory, ignore_errors=True)


def machine_target() -> str:
    return "linux/" + {"x86_64": "amd64", "aarch64": "arm64"}.get(machine(), machine())


def shipped_version(name: str) -> str:
    """The version of a distribution among the packaged wheels."""
    versions = {wheel.name.split("-")[1] for wheel in (BUILDPACK / "wheels").rglob("*.whl")
                if wheel.name.split("-")[0].lower() == name}
    assert len(versions) == 1, versions
    return versions.pop()


def check_sboms(workspace: Workspace) -> None:
    """The lifecycle took the servestatic layer's SBOMs (it refuses formats buildpack.toml does
    not declare) into the image's SBOM directory; they name what the layer holds."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    sboms = workspace.layers / "sbom" / "launch" / BP_LAYERS / "servestatic"
    cdx_text = (sboms / "sbom.cdx.json").read_text()
    assert JsonStrictValidator(SchemaVersion.V1_5).validate_str(cdx_text) is None
    expected = {"gunicorn": shipped_version("gunicorn"), "servestatic-origin": "0.1.0",
                "brotli": shipped_version("brotli"), "zopfli": shipped_version("zopfli")}
    components = {c["name"].lower(): c for c in json.loads(cdx_text)["components"]}
    for name, version in expected.items():
        assert components[name]["version"] == version
        assert components[name]["purl"] == f"pkg:pypi/{name}@{version}"
        assert len(components[name]["hashes"][0]["content"]) == 64  # the wheel's SHA-256
    spdx = json.loads((sboms / "sbom.spdx.json").read_text())
    assert spdx["spdxVersion"] == "SPDX-2.3"
    packages = {p["name"].lower(): p["versionInfo"] for p in spdx["packages"]}
    assert {name: packages[name] for name in expected} == expected
    assert len(spdx["relationships"]) == len(spdx["packages"])


def test_package_ships_every_declared_target_and_python(store: Path) -> None:
    """For each [[targets]] entry and each supported CPython, every dependency has a wheel
    that CPython on that CPU installs (tags as pip computes them, from `packaging`)."""
    wheels = BUILDPACK / "wheels"
    index = json.loads((wheels / "index.json").read_text())
    declared = tomllib.loads((BUILDPACK / "buildpack.toml").read_text())["targets"]
    assert index["targets"] == [f"{t['os']}/{t['arch']}" for t in declared] == ["linux/amd64", "linux/arm64"]
    assert index["pythons"] == list(SUPPORTED_PYTHONS) == ["3.11", "3.12", "3.13", "3.14"]
    for target in index["targets"]:
        arch = target.split("/")[1]
        directory = wheels / target_dir_name("linux", arch)
        shipped = [parse_wheel_filename(wheel.name) for wheel in directory.glob("*.whl")]
        for python in index["pythons"]:
            version = tuple(int(part) for part in python.split("."))
            tags = {*cpython_tags(version, platforms=platform_tags(arch)),
                    *compatible_tags(version, platforms=platform_tags(arch))}
            for line in requirements(REPO / "pyproject.toml", python, arch):
                name = canonicalize_name(Requirement(line).name)
                assert any(n == name and tags & set(wheel_tags) for n, _, _, wheel_tags in shipped), (
                    f"no {name} wheel for CPython {python} on {target}")
    # backports.zstd's marker keeps it off 3.14, whose standard library has compression.zstd.
    assert requirements(REPO / "pyproject.toml", "3.14", "amd64") == [
        line for line in requirements(REPO / "pyproject.toml", "3.13", "amd64") if "backports" not in line]


def test_build_chooses_the_wheels_of_its_target(tmp_path: Path) -> None:
    def index(glibc: str) -> None:
        python = "{}.{}".format(*sys.version_info[:2])
        (tmp_path / "index.json").write_text(json.dumps(
            {"targets": ["linux/amd64", "linux/arm64"], "pythons": [python], "glibc": glibc}))

    index("2.28")
    assert shipped_wheel_dirs(tmp_path, {"CNB_TARGET_OS": "linux", "CNB_TARGET_ARCH": "arm64"}) == [
        tmp_path, tmp_path / "linux-arm64"]
    with pytest.raises(BuildError, match=r"^CPython 3\.\d+ on linux/ppc64le is not supported: this buildpack "
                                         r"has wheels for CPython 3\.\d+ on linux/amd64, linux/arm64$"):
        shipped_wheel_dirs(tmp_path, {"CNB_TARGET_ARCH": "ppc64le"})
    index("99.0")
    with pytest.raises(BuildError, match=r"the wheels need glibc 99\.0 or later$"):
        shipped_wheel_dirs(tmp_path, {})


@pytest.mark.parametrize("version", ["3.12", "3.13"])
def test_build_and_launch_on_cpython(version: str, cpython_copy: Callable[[str], Path],
                                     lifecycle_user: pwd.struct_passwd | None, store: Path) -> None:
    """The packaged wheels install offline on each CPython a Python buildpack may provide
    (the other tests run on Debian's 3.11), and the image serves."""
    python = cpython_copy(version)
    root = Path(tempfile.mkdtemp(prefix=f"servestatic-cnb-py{version}-"))
    try:
        workspace = Workspace(root, lifecycle_user, store).setup()
        copy_site(workspace.app / "dist")
        workspace.set_env("BP_CPYTHON_EXECUTABLE", os.fspath(python))
        workspace.detect()
        output = workspace.build().stdout
        assert f"servestatic: installing servestatic and gunicorn on CPython {version}." in output
        venv_config = (workspace.layers / BP_LAYERS / "servestatic" / "pyvenv.cfg").read_text()
        assert re.search(rf"^version(_info)? = {re.escape(version)}\.\d+$", venv_config, re.M), venv_config
        check_sboms(workspace)
        web = start_web(workspace)
        try:
            response = httpx.get(web.base + "/assets/app-3fA9c1bd.js", headers={"Accept-Encoding": "br"})
            assert (response.status_code, response.headers["content-encoding"]) == (200, "br")
        finally:
            stop(web)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_build_fails_at_its_start_on_an_unsupported_cpython(
        workspace: Workspace, cpython_copy: Callable[[str], Path]) -> None:
    """3.10 (end of life since October 2026) is not shipped: one line naming the Python and
    the architecture, before anything is installed."""
    workspace.set_env("BP_CPYTHON_EXECUTABLE", os.fspath(cpython_copy("3.10")))
    copy_site(workspace.app / "dist")
    workspace.detect()
    result = workspace.build(check=False)
    assert result.returncode != 0
    errors = [line for line in result.stdout.splitlines() if line.startswith("servestatic: error:")]
    expected = (f"servestatic: error: CPython 3.10 on {machine_target()} is not supported: this buildpack "
                "has wheels for CPython 3.11, 3.12, 3.13, 3.14 on linux/amd64, linux/arm64")
    assert errors == [expected], result.stdout
    assert not (workspace.layers / BP_LAYERS / "servestatic").exists()


# --- a Django project: collectstatic at build time, Django behind servestatic at launch


@pytest.fixture(scope="module")
def django_web(lifecycle_user: pwd.struct_passwd | None, store: Path) -> Iterator[Launched]:
    """examples/django as pushed to a PaaS: sources only, no staticfiles/. The stand-in
    Python buildpack installs requirements.txt (offline, from the host wheelhouse); this
    buildpack runs collectstatic, compresses both mounts (staticfiles/ at /static/, public/
    at /), and chains to mysite.wsgi:application."""
    wheelhouse = subprocess.run([os.fspath(REPO / "scripts" / "wheelhouse.sh")], check=True, timeout=900,
                                cwd=REPO, stdout=subprocess.PIPE, text=True).stdout.strip()
    root = Path(tempfile.mkdtemp(prefix="servestatic-cnb-django-"))
    try:
        workspace = Workspace(root, lifecycle_user, store).setup()
        shutil.copytree(REPO / wheelhouse, root / "wheelhouse")
        shutil.copytree(REPO / "examples" / "django", workspace.app, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("staticfiles", "__pycache__", "*.sqlite3"))
        workspace.set_env("BP_CPYTHON_FIND_LINKS", os.fspath(root / "wheelhouse"))
        workspace.set_env("BP_SERVESTATIC_MOUNTS", "/static/=staticfiles,/=public")
        workspace.set_env("BP_SERVESTATIC_APP", "mysite.wsgi:application")
        workspace.detect()
        output = workspace.build().stdout
        assert "servestatic: running python manage.py collectstatic --noinput" in output
        # The example's storage (servestatic.django) compresses staticfiles/ during
        # collectstatic, so compress then keeps its variants; public/ it compresses itself.
        static, public = compress_summaries(output)
        assert totals(static, "compressed") == 0 and totals(static, "reused") > 0, static
        assert totals(public, "compressed") > 0, public
        web = start_web(workspace)
        yield web
        stop(web)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_django_views_come_from_django(django_web: Launched) -> None:
    assert_views_come_from_django(django_web.base)


def test_django_static_files_come_compressed_from_servestatic(django_web: Launched) -> None:
    assert_static_files_come_from_servestatic(django_web.base)


def test_django_site_root_files_come_from_the_second_mount(django_web: Launched) -> None:
    assert_site_root_files_come_from_servestatic(django_web.base)


# --- the whole platform: pack build against podman's Docker API, no registry

PACK = REPO / ".cache" / "cnb" / "bin" / "pack"
LIFECYCLE_ARCHIVE = LIFECYCLE.resolve().parent / "lifecycle.tgz"
BUILDER_IMAGE = "localhost/servestatic-test/cnb-builder:latest"
APP_IMAGE = "localhost/servestatic-test/cnb-app:latest"


@dataclass
class Platform:
    """pack, talking to a podman API service of our own."""

    env: dict[str, str]
    root: Path

    def run(self, *command: str, timeout: float = 600) -> str:
        result = subprocess.run(command, env=self.env, cwd=self.root, text=True, timeout=timeout,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert result.returncode == 0, f"{' '.join(command[:3])} failed:\n{result.stdout}"
        return result.stdout

    def pack_build(self, app: Path, *extra: str) -> str:
        return self.run(os.fspath(PACK), "build", APP_IMAGE, "--builder", BUILDER_IMAGE,
                        "--path", os.fspath(app), "--pull-policy", "never", "--trust-builder",
                        "--docker-host", "inherit", "--network", "none",
                        "--env", "BP_SERVESTATIC_APP=hello:application", *extra)


@pytest.fixture(scope="module")
def platform(store: Path) -> Iterator[Platform]:  # store: buildpack/package has run
    needs(PACK.exists() and LIFECYCLE_ARCHIVE.exists(), "pack is not built (scripts/install/lifecycle.sh)")
    podman = shutil.which("podman")
    needs(podman is not None, "podman is not installed (scripts/install/podman.sh installs it)")
    needs(os.geteuid() == 0, "the image tests run podman as root")
    assert podman is not None
    root = Path(tempfile.mkdtemp(prefix="servestatic-pack-"))
    socket_path = root / "podman.sock"
    service = subprocess.Popen([podman, "system", "service", "--time=0", f"unix://{socket_path}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # A fixed volume key: pack then keeps one build cache for APP_IMAGE across runs instead
    # of a new pair of volumes each time (the first build of a test clears it).
    env = {**os.environ, "DOCKER_HOST": f"unix://{socket_path}", "PACK_HOME": os.fspath(root / "pack"),
           "PACK_VOLUME_KEY": "servestatic-tests"}
    deadline = time.monotonic() + 30
    while not socket_path.exists():
        assert service.poll() is None, "podman system service exited"
        assert time.monotonic() < deadline, "podman system service did not open its socket"
        time.sleep(0.1)
    try:
        platform = Platform(env, root)
        # buildpack/dev-builder: stack image from scripts/image-base.sh, the lifecycle archive,
        # the cpython stand-in and this buildpack (packaged by the `store` fixture).
        assert platform.run(os.fspath(BUILDPACK / "dev-builder"), BUILDER_IMAGE).splitlines()[-1] == (
            BUILDER_IMAGE)
        yield platform
    finally:
        service.terminate()
        service.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def app_container(platform: Platform) -> Iterator[tuple[str, str]]:
    """APP_IMAGE run read-only on a free loopback port until it answers its health path:
    (its base URL, the container's id); removed afterwards."""
    port = free_port()
    container = platform.run("podman", "run", "-d", "--read-only", "-p", f"127.0.0.1:{port}:8080",
                             "-e", "PORT=8080", "-e", "WEB_CONCURRENCY=1", APP_IMAGE).strip()
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, platform.run("podman", "logs", container)
            time.sleep(0.2)
        yield base, container
    finally:
        subprocess.run(["podman", "rm", "--force", container], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)


def test_pack_build_runs_and_rebuilds_from_cache(platform: Platform) -> None:
    app = platform.root / "app"
    copy_site(app / "public")
    (app / "hello.py").write_text(HELLO_APP)

    first = platform.pack_build(app, "--clear-cache")
    assert totals(compress_summary(first), "compressed") > 0
    # The exporter put the servestatic layer's SBOMs into the image, where pack finds them.
    downloaded = platform.root / "sbom"
    platform.run(os.fspath(PACK), "sbom", "download", APP_IMAGE, "--output-dir", os.fspath(downloaded))
    sboms = downloaded / "layers" / "sbom" / "launch" / BP_LAYERS / "servestatic"
    components = json.loads((sboms / "sbom.cdx.json").read_text())["components"]
    assert {c["name"]: c["version"] for c in components}["gunicorn"] == shipped_version("gunicorn")
    assert (sboms / "sbom.spdx.json").is_file()

    with app_container(platform) as (base, container):
        asset = httpx.get(base + "/assets/app-3fA9c1bd.js", headers={"Accept-Encoding": "br"})
        assert asset.headers["content-encoding"] == "br"
        assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert httpx.get(base + "/hello/").text == "hello from the app at /hello/"
        platform.run("podman", "stop", "--time", "30", container)
        assert platform.run("podman", "wait", container).strip() == "0"

    # Same sources again: pack's restorer brings back the cache layers.
    second = platform.pack_build(app)
    summary = compress_summary(second)
    assert "servestatic: reusing the servestatic layer" in second
    assert totals(summary, "compressed") == 0
    assert totals(summary, "from_cache") == totals(compress_summary(first), "compressed")
    assert "Reusing layer 'servestatic/static-origin:servestatic'" in second

    # One bundle changed and renamed, as a bundler does: the restored compress-cache layer
    # holds its previous version, so this build makes its dcz delta, and the image serves
    # it to a browser that holds the previous version.
    old = app / "public" / "assets" / "app-3fA9c1bd.js"
    earlier = old.read_bytes()
    changed = earlier.replace(b"async function describe(url)", b"async function describe(url, init)")
    assert changed != earlier
    old.unlink()
    renamed = "assets/app-9Zq4Wx2c.js"
    (app / "public" / renamed).write_bytes(changed)
    third = compress_summary(platform.pack_build(app))
    assert (third["deltas"]["deltas"], third["deltas"]["made"]) == (1, 1), third["deltas"]
    with app_container(platform) as (base, _):
        asking = {"Accept-Encoding": "dcz, br, gzip", "Available-Dictionary": available_dictionary(earlier)}
        with httpx.stream("GET", f"{base}/{renamed}", headers=asking) as response:
            body = b"".join(response.iter_raw())
        assert (response.status_code, response.headers["content-encoding"]) == (200, "dcz")
        assert decode_dcz(body, earlier) == changed
        br = httpx.get(f"{base}/{renamed}", headers={"Accept-Encoding": "dcz, br, gzip"})
        print(f"\npack: delta {len(body)} bytes, br {br.headers['content-length']}, file {len(changed)}")

"""The container image, built and run with podman.

Builds servestatic/base from the root Dockerfile, then the README's two Dockerfiles
(examples/docker/static-only and examples/django/Dockerfile, the Django example) and the
onbuild variant, from group-writable build contexts, and runs them on real sockets; and
runs the README's shell blocks as a user would copy them. No registry is reachable here, so the
base is a Debian bookworm root made by scripts/image-base.sh and every Python package
comes from a wheelhouse downloaded on the host (scripts/wheelhouse.sh); both are cached
under .cache/, and podman's layer cache makes a rerun take seconds.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support import EXAMPLE_SITE, REPO, needs, needs_tool
from tests.support.deltas import Release, bundle_name, decode_dcz, write_release
from tests.support.django import (
    assert_site_root_files_come_from_servestatic,
    assert_static_files_come_from_servestatic,
    assert_views_come_from_django,
)
from tests.support.server import free_port
from tests.support.site import copy_site

pytestmark = pytest.mark.image

# What `FROM servestatic/base:0.1` in the example Dockerfiles resolves to locally.
BASE_TAG = "localhost/servestatic/base:0.1"
ONBUILD_TAG = "localhost/servestatic/base:0.1-onbuild"
STATIC_TAG = "localhost/servestatic-test/static-only:latest"
CHAINED_TAG = "localhost/servestatic-test/chained:latest"
ONBUILD_SITE_TAG = "localhost/servestatic-test/onbuild-site:latest"
EXAMPLE_DOCKERFILES = REPO / "examples" / "docker"
STATIC_DOCKERFILE = EXAMPLE_DOCKERFILES / "static-only" / "Dockerfile"
DJANGO_PROJECT = REPO / "examples" / "django"
DJANGO_DOCKERFILE = DJANGO_PROJECT / "Dockerfile"
MAX_GROWTH = 40 * 1000 * 1000  # bytes the image may add to its base
MAX_START = 2.0  # seconds from `podman run` to the first 200 (median of START_RUNS)
START_RUNS = 5
MAX_STOP = 5.0  # seconds `podman stop` may take


def run(*command: str | Path, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure, fail the test with its output rather than a bare exit code."""
    result = subprocess.run(
        [str(part) for part in command], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )
    if check and result.returncode != 0:
        output = (result.stdout + result.stderr)[-4000:]
        pytest.fail(f"{' '.join(map(str, command))} exited {result.returncode}:\n{output}", pytrace=False)
    return result


def podman(*args: str | Path, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run("podman", *args, timeout=timeout, check=check)


def inspect(kind: str, name: str) -> dict:
    return json.loads(podman(kind, "inspect", name).stdout)[0]


@dataclass(frozen=True)
class Toolchain:
    """The local stand-in for python:*-slim and the wheelhouse that replaces PyPI."""

    python_image: str
    wheelhouse: Path

    def build(
        self, dockerfile: Path, context: Path, tag: str, *, pip: bool = False, **args: str
    ) -> subprocess.CompletedProcess[str]:
        """`podman build` with no network; `pip` mounts the wheelhouse and points pip at it."""
        command = ["build", "--format", "docker", "--network", "none", "--file", str(dockerfile),
                   "--tag", tag]
        if pip:
            command += ["--volume", f"{self.wheelhouse.resolve()}:/wheelhouse:ro"]
            args = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "/wheelhouse", **args}
        for name, value in args.items():
            command += ["--build-arg", f"{name}={value}"]
        return podman(*command, str(context))


@pytest.fixture(scope="module")
def toolchain() -> Toolchain:
    needs_tool("podman")
    python_image = run("scripts/image-base.sh").stdout.strip()
    version = podman(
        "run", "--rm", python_image, "python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"
    ).stdout.strip()
    wheelhouse = Path(run("scripts/wheelhouse.sh", version).stdout.strip())
    return Toolchain(python_image, REPO / wheelhouse)


@pytest.fixture(scope="module")
def base_image(toolchain: Toolchain) -> str:
    toolchain.build(REPO / "Dockerfile", REPO, BASE_TAG, pip=True, BASE_IMAGE=toolchain.python_image)
    return BASE_TAG


def group_writable(tree: Path) -> Path:
    """Give everything in tree group write permission, as `git archive` and Ubuntu's umask
    002 do: COPY keeps it, and the image's server runs in group 0."""
    for path in [tree, *tree.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o020)
    return tree


def site_context(parent: Path) -> Path:
    """A group-writable build context holding dist/: the example site without build output."""
    context = parent / "context"
    copy_site(context / "dist")
    return group_writable(context)


def assert_the_server_cannot_change(image: str, *paths: str) -> None:
    """Run `image` as its own user (10001, group 0) with a writable root file system, and
    try to append to each path: every attempt must be refused by the file's modes."""
    probe = ("import sys\n"
             "for path in sys.argv[1:]:\n"
             "    try:\n"
             "        open(path, 'a').close()\n"
             "        print('writable', path)\n"
             "    except PermissionError:\n"
             "        print('refused', path)\n")
    result = podman("run", "--rm", "--entrypoint", "python3", image, "-c", probe, *paths)
    assert result.stdout.split("\n")[:-1] == [f"refused {path}" for path in paths], result.stdout


@pytest.fixture(scope="module")
def static_image(toolchain: Toolchain, base_image: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    context = site_context(tmp_path_factory.mktemp("static-only"))
    toolchain.build(STATIC_DOCKERFILE, context, STATIC_TAG)
    return STATIC_TAG


@pytest.fixture(scope="module")
def chained_image(toolchain: Toolchain, base_image: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    project = tmp_path_factory.mktemp("django") / "project"
    shutil.copytree(DJANGO_PROJECT, project, ignore=shutil.ignore_patterns("staticfiles", "__pycache__"))
    toolchain.build(project / "Dockerfile", group_writable(project), CHAINED_TAG, pip=True)
    return CHAINED_TAG


@dataclass
class Container:
    name: str
    url: str
    started: float  # time.monotonic() just before `podman run`

    def running(self) -> bool:
        return podman("inspect", "--format", "{{.State.Running}}", self.name).stdout.strip() == "true"

    def logs(self) -> str:
        result = podman("logs", self.name, check=False)
        return result.stdout + result.stderr

    def wait_ready(self, path: str = "/healthz", deadline: float = 15.0) -> float:
        """Poll until `path` answers 200; return seconds since `podman run`."""
        give_up = time.monotonic() + deadline
        next_liveness_check = time.monotonic() + 0.5
        while True:
            try:
                if httpx.get(self.url + path, timeout=1.0).status_code == 200:
                    return time.monotonic() - self.started
            except httpx.TransportError:
                pass
            now = time.monotonic()
            if now > give_up:
                pytest.fail(f"{path} never answered 200 within {deadline} s:\n{self.logs()}", pytrace=False)
            if now > next_liveness_check:
                if not self.running():
                    pytest.fail(f"the container exited:\n{self.logs()}", pytrace=False)
                next_liveness_check = now + 0.5
            time.sleep(0.02)


@contextlib.contextmanager
def container(image: str, *options: str, command: tuple[str, ...] = ()) -> Iterator[Container]:
    """Run `image` detached on a fresh 127.0.0.1 port; always removed afterwards."""
    name = f"servestatic-test-{uuid.uuid4().hex[:10]}"
    port = free_port()
    started = time.monotonic()
    podman("run", "--detach", "--name", name, "--publish", f"127.0.0.1:{port}:8000", *options, image,
           *command)
    try:
        yield Container(name, f"http://127.0.0.1:{port}", started)
    finally:
        podman("rm", "--force", "--time", "0", name, check=False)


# --- the Dockerfiles themselves


def test_dockerfiles_pass_hadolint() -> None:
    beside_python = Path(sys.executable).parent / "hadolint"
    hadolint = str(beside_python) if beside_python.exists() else needs_tool("hadolint")
    dockerfiles = [REPO / "Dockerfile", REPO / "Dockerfile.onbuild", DJANGO_DOCKERFILE,
                   *sorted(EXAMPLE_DOCKERFILES.glob("*/Dockerfile"))]
    assert len(dockerfiles) == 5
    result = run(hadolint, "--no-color", *dockerfiles, check=False)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_readme_shows_the_dockerfiles_the_tests_build() -> None:
    documents = [path for path in (REPO / "README.md", REPO / "docs" / "image.md") if path.exists()]
    needs(bool(documents), "neither README.md nor docs/image.md exists")
    text = "\n".join(path.read_text() for path in documents)
    for path in (STATIC_DOCKERFILE, DJANGO_DOCKERFILE):
        assert path.read_text().strip() in text, f"{path.relative_to(REPO)} is not in the README verbatim"


# --- servestatic/base


def test_base_image_metadata(base_image: str) -> None:
    image = inspect("image", base_image)
    config = image["Config"]
    assert config["User"] == "10001"
    assert config["WorkingDir"] == "/srv"
    assert "8000/tcp" in config["ExposedPorts"]
    assert config["StopSignal"] == "SIGTERM"
    assert config["Entrypoint"] == ["/usr/local/bin/servestatic-entrypoint"]
    assert not config.get("Cmd")
    assert {"PYTHONUNBUFFERED=1", "SERVESTATIC_ROOT=/srv/www"} <= set(config["Env"])
    assert image["Healthcheck"]["Test"] == ["CMD", "servestatic", "healthcheck"]  # exec form, no curl
    labels = config["Labels"]
    for key in ("title", "description", "version", "licenses", "source"):
        assert labels.get(f"org.opencontainers.image.{key}"), key


def test_base_image_is_small_and_has_no_compiler(toolchain: Toolchain, base_image: str) -> None:
    growth = inspect("image", base_image)["Size"] - inspect("image", toolchain.python_image)["Size"]
    print(f"\nservestatic/base adds {growth / 1e6:.1f} MB to its base")
    assert 0 < growth <= MAX_GROWTH
    probe = (
        "import glob, shutil\n"
        "compilers = [name for name in ('gcc', 'cc', 'c++', 'g++', 'clang', 'ld') if shutil.which(name)]\n"
        "print(sorted(compilers + glob.glob('/usr/bin/*-gcc*')))"
    )
    found = podman("run", "--rm", "--entrypoint", "python3", base_image, "-c", probe).stdout.strip()
    assert found == "[]"


def test_arguments_pass_through_to_the_cli(base_image: str) -> None:
    help_text = podman("run", "--rm", "--env", "COLUMNS=300", base_image, "--help").stdout
    assert "Usage: servestatic serve" in help_text
    assert "SERVESTATIC_PREFIX" in help_text and "WEB_CONCURRENCY" in help_text
    version = podman("run", "--rm", base_image, "version").stdout.strip()
    assert version == inspect("image", base_image)["Config"]["Labels"]["org.opencontainers.image.version"]
    bad = podman("run", "--rm", "--env", "PORT=eighty", base_image, check=False)
    assert bad.returncode == 2
    assert "servestatic: error: PORT: got 'eighty'" in bad.stderr
    # A subcommand passes through (nothing listens in this container, so the check fails)...
    health = podman("run", "--rm", base_image, "healthcheck", check=False)
    assert health.returncode == 1
    assert "Connection refused" in health.stderr
    # ...and anything else runs as a command, as official images do.
    shell = podman("run", "--rm", base_image, "sh", "-c", 'echo "$0 ran"', "sh").stdout
    assert shell == "sh ran\n"


def test_a_volume_without_manifest_is_compressed_at_start(base_image: str, tmp_path: Path) -> None:
    site = site_context(tmp_path) / "dist"
    for path in [site, *site.rglob("*")]:  # the container's user must be able to write
        path.chmod(0o777 if path.is_dir() else 0o666)
    with container(base_image, "--volume", f"{site}:/srv/www") as running:
        running.wait_ready()
        response = httpx.get(running.url + "/css/print.css", headers={"Accept-Encoding": "br"})
        assert response.headers.get("content-encoding") == "br"
        assert (site / ".servestatic-manifest.json").exists()
        assert "has no manifest; compressing it" in running.logs()


# --- the README's static-only Dockerfile


def test_start_to_first_200_is_fast(static_image: str) -> None:
    # The median of a few runs: one run on a busy 2-core machine says more about its
    # neighbours than about the image. Of each time, `podman run -d` itself (network,
    # conmon, runc) takes about half; the entrypoint, gunicorn and the table the rest.
    times = []
    for _ in range(START_RUNS):
        with container(static_image) as running:
            times.append(running.wait_ready("/"))
    print("\npodman run -> first 200: " + ", ".join(f"{took:.2f} s" for took in times))
    assert sorted(times)[len(times) // 2] < MAX_START


def test_static_only_image(static_image: str) -> None:
    with container(static_image) as running:
        running.wait_ready("/")

        css = "/css/site.0123456789ab.css"
        response = httpx.get(running.url + css, headers={"Accept-Encoding": "br"})
        assert response.status_code == 200
        assert response.headers["content-encoding"] == "br"
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert response.content == (EXAMPLE_SITE / css.lstrip("/")).read_bytes()  # httpx decoded br

        page = httpx.get(running.url + "/", headers={"Accept-Encoding": "gzip"})
        assert page.headers["content-encoding"] == "gzip"
        assert page.text == (EXAMPLE_SITE / "index.html").read_text()  # httpx decodes gzip

        missing = httpx.get(running.url + "/no/such/file.js")
        assert missing.status_code == 404
        health = httpx.get(running.url + "/healthz")
        assert (health.status_code, health.text.strip(), health.headers["cache-control"]) == (
            200, "ok", "no-store")

        assert "has no manifest" not in running.logs()  # compressed at build time

    checked = podman("run", "--rm", static_image, "check")  # other subcommands pass through too
    assert checked.stdout.startswith("ok: ") and "manifest" in checked.stdout


def test_the_server_cannot_change_the_site_it_serves(static_image: str) -> None:
    """Built from a group-writable context and run without --read-only: the server's user
    (UID 10001, group 0) still cannot change a file or add one."""
    assert_the_server_cannot_change(static_image, "/srv/www/index.html", "/srv/www/css/print.css",
                                    "/srv/www/css/print.css.br", "/srv/www/.servestatic-manifest.json",
                                    "/srv/www/new.html")


def test_the_empty_base_image_is_not_healthy(base_image: str) -> None:
    """servestatic/base run as it is serves nothing: live, not ready, and its HEALTHCHECK
    (`servestatic healthcheck`) says so."""
    with container(base_image) as running:
        running.wait_ready("/healthz")
        assert httpx.get(running.url + "/readyz").status_code == 503
        health = podman("exec", running.name, "servestatic", "healthcheck", check=False)
        assert health.returncode == 1
        assert health.stderr.strip() == "servestatic: error: 0.0.0.0:8000/readyz answered 503"


def test_rebuild_after_a_small_change_recompresses_only_that(
    toolchain: Toolchain, base_image: str, tmp_path: Path
) -> None:
    context = site_context(tmp_path)
    changed = context / "dist" / "css" / "print.css"
    summaries = []
    for _ in range(2):  # the first build fills the cache mount whatever ran before
        changed.write_text(changed.read_text() + f"/* {uuid.uuid4().hex} */\n")
        output = toolchain.build(STATIC_DOCKERFILE, context, STATIC_TAG + "-rebuilt").stdout
        summaries.append(re.search(r"br: \d+ variants, .*? for (\d+) files .*?; (\d+) compressed, "
                                   r"(\d+) cached", output))
    assert summaries[-1] is not None, output
    files, compressed, cached = map(int, summaries[-1].groups())
    print(f"\nrebuild after one change: br {compressed} compressed, {cached} cached")
    assert (compressed, cached) == (1, files - 1)
    podman("rmi", STATIC_TAG + "-rebuilt", check=False)


def release_context(parent: Path, release: int, salt: str) -> tuple[Path, Release]:
    """A group-writable build context whose dist/ is one release of the delta test site, its
    bundle made unique to this run (`salt`), so that the shared cache mount holds no delta
    of it from an earlier run."""
    context = parent / f"release{release}"
    dist = context / "dist"
    made = write_release(dist, release)
    data = made.data + f"// build {salt}\n".encode()
    (dist / made.name).unlink()
    name = "assets/" + bundle_name(data)
    (dist / name).write_bytes(data)
    index = dist / "index.html"
    index.write_text(index.read_text().replace(made.name, name))
    return group_writable(context), Release(dist, data, name)


@pytest.mark.parametrize("variant", ["static-only", "onbuild"])
def test_a_rebuild_with_the_cache_mount_serves_a_changed_bundle_as_a_delta(
    toolchain: Toolchain, base_image: str, tmp_path: Path, variant: str
) -> None:
    """The README's static-only Dockerfile and the onbuild variant's one line, as they are
    (each compresses in a `RUN --mount=type=cache`): release 1 of a site, then release 2
    with one hashed bundle changed. Release 2's image answers a client holding release 1's
    bundle with a dcz delta (RFC 9842) that decodes, with release 1's bundle as the raw
    dictionary, to release 2's bundle; the image's zstd is backports.zstd, the zstd extra.
    podman's cache mounts work offline (buildah keeps them under /var/tmp/buildah-cache),
    so no bind-mounted cache is needed."""
    salt = uuid.uuid4().hex
    # The base pinned by its id: other test runs may retag the shared names meanwhile.
    base_id = inspect("image", base_image)["Id"]
    dockerfile = EXAMPLE_DOCKERFILES / variant / "Dockerfile"
    tag = f"localhost/servestatic-test/deltas-{salt[:10]}"
    onbuild = f"{tag}:onbuild"
    outputs = []
    releases = []
    try:
        if variant == "onbuild":
            toolchain.build(REPO / "Dockerfile.onbuild", REPO, onbuild, BASE=base_id)
            base_id = inspect("image", onbuild)["Id"]
        for number in (1, 2):
            context, release = release_context(tmp_path, number, salt)
            releases.append(release)
            outputs.append(podman("build", "--format", "docker", "--network", "none", "--from", base_id,
                                  "--file", str(dockerfile), "--tag", f"{tag}:{number}",
                                  str(context)).stdout)
        first, second = releases
        line = re.search(r"dcz: (\d+) deltas for \d+ files against earlier versions, ([\d,]+) bytes "
                         r"where br sends ([\d,]+)", outputs[1])
        assert line is not None, outputs[1]
        print(f"\nrelease 2's build: {line.group(0)}")
        assert int(line.group(1)) >= 1
        with container(f"{tag}:2", "--read-only") as running:
            running.wait_ready("/")
            url = running.url + "/" + second.name
            asking = {"Accept-Encoding": "dcz, br, gzip", "Available-Dictionary": first.dictionary}
            with httpx.stream("GET", url, headers=asking) as response:
                body = b"".join(response.iter_raw())
            assert response.status_code == 200
            assert response.headers["content-encoding"] == "dcz"
            assert response.headers["vary"] == "Accept-Encoding, Available-Dictionary"
            assert int(response.headers["content-length"]) == len(body)
            assert decode_dcz(body, first.data) == second.data
            br = httpx.get(url, headers={"Accept-Encoding": "dcz, br, gzip"})
            assert br.headers["content-encoding"] == "br"
            assert br.content == second.data  # httpx decoded br
            assert 'match="/assets/main-*.js"' in br.headers["use-as-dictionary"]
            br_size = int(br.headers["content-length"])
            print(f"delta {len(body):,} bytes, br {br_size:,}, file {len(second.data):,}")
            assert len(body) < br_size / 10
    finally:
        for name in (f"{tag}:2", f"{tag}:1", onbuild):
            podman("rmi", "--force", name, check=False)


@pytest.mark.parametrize(
    "options",
    [
        ["--read-only", "--user", "12345"],
        ["--read-only", "--user", "12345:0", "--cap-drop", "ALL"],
        ["--read-only", "--read-only-tmpfs=false", "--user", "12345:12345", "--cap-drop", "ALL"],
    ],
    ids=["read-only-uid", "read-only-uid-gid0-no-caps", "read-only-no-tmp-no-caps"],
)
def test_runs_read_only_as_any_user(static_image: str, options: list[str]) -> None:
    with container(static_image, *options) as running:
        running.wait_ready()
        response = httpx.get(running.url + "/js/analytics.js", headers={"Accept-Encoding": "gzip, br"})
        assert response.status_code == 200
        assert response.headers["content-encoding"] == "br"


def test_podman_stop_is_graceful(static_image: str) -> None:
    with container(static_image) as running:
        running.wait_ready()
        started = time.monotonic()
        podman("stop", "--time", "20", running.name)
        took = time.monotonic() - started
        print(f"\npodman stop: {took:.2f} s")
        state = inspect("container", running.name)["State"]
        assert state["ExitCode"] == 0
        assert took < MAX_STOP


def test_healthcheck_passes(static_image: str) -> None:
    with container(static_image, "--env", "SERVESTATIC_HEALTH_PATH=/ready") as running:
        running.wait_ready("/ready")
        result = podman("healthcheck", "run", running.name, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


def test_healthcheck_fails_when_nothing_answers(static_image: str) -> None:
    # The server's readiness path comes from a flag the health check does not see.
    with container(static_image, command=("--ready-path", "/elsewhere")) as running:
        deadline = time.monotonic() + 15
        while "Listening at" not in running.logs():
            assert time.monotonic() < deadline, running.logs()
            time.sleep(0.05)
        result = podman("healthcheck", "run", running.name, check=False)
        assert result.returncode != 0


# --- the README's chained Dockerfile: the Django example


def test_chained_django_image(chained_image: str) -> None:
    with container(chained_image, "--read-only", "--user", "12345", "--cap-drop", "ALL") as running:
        running.wait_ready()
        assert_views_come_from_django(running.url)
        assert_static_files_come_from_servestatic(running.url)
        assert_site_root_files_come_from_servestatic(running.url)
    # Built from a group-writable checkout: neither the app's code nor its files may change.
    assert_the_server_cannot_change(chained_image, "/srv/app/mysite/settings.py", "/srv/app/manage.py",
                                    "/srv/app/public/robots.txt",
                                    "/srv/app/staticfiles/.servestatic-manifest.json")


# --- the onbuild variant


def test_onbuild_variant(toolchain: Toolchain, base_image: str, tmp_path: Path) -> None:
    toolchain.build(REPO / "Dockerfile.onbuild", REPO, ONBUILD_TAG, BASE=base_image)
    context = site_context(tmp_path)
    toolchain.build(EXAMPLE_DOCKERFILES / "onbuild" / "Dockerfile", context, ONBUILD_SITE_TAG)
    with container(ONBUILD_SITE_TAG, "--read-only") as running:
        running.wait_ready()
        response = httpx.get(running.url + "/assets/app-3fA9c1bd.js", headers={"Accept-Encoding": "br"})
        assert response.headers["content-encoding"] == "br"
        assert "immutable" in response.headers["cache-control"]
        assert "has no manifest" not in running.logs()
    assert_the_server_cannot_change(ONBUILD_SITE_TAG, "/srv/www/index.html", "/srv/www/css/print.css")


def test_hardened_run_writes_nothing_outside_temp(static_image: str) -> None:
    """Non-root, no capabilities, no privilege escalation, and (with a writable root
    file system, so that a write could happen) nothing written outside /tmp."""
    # --passwd=false: podman itself would otherwise add the user to /etc/group at start.
    options = ["--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--passwd=false"]
    with container(static_image, *options) as running:
        running.wait_ready()
        for path, headers in [("/", {"Accept-Encoding": "br"}), ("/img/banner.png", {"Range": "bytes=0-9"}),
                              ("/missing", {}), ("/docs", {}), ("/healthz", {})]:
            assert httpx.get(running.url + path, headers=headers).status_code in (200, 206, 301, 404)
        users = podman("top", running.name, "user", "huser").stdout.split()[2:]
        assert users and "root" not in users, users
        capabilities = podman("top", running.name, "capeff").stdout.split()[2:]  # after "EFFECTIVE CAPS"
        assert capabilities and set(capabilities) == {"none"}, capabilities
        changed = [line.split(None, 1)[1] for line in podman("diff", running.name).stdout.splitlines()
                   if line.strip()]
        # "/etc" itself shows as changed for the mount points podman makes for
        # /etc/hosts, /etc/resolv.conf and /etc/hostname; any file in it would be listed.
        outside = [path for path in changed
                   if path != "/etc" and not (path == "/tmp" or path.startswith("/tmp/"))]
        assert outside == [], changed


# --- the README's shell blocks, as a user copies them

README_MARKER = "<!-- run by tests/test_image.py::test_readme_blocks_run_as_written -->"


def readme_blocks() -> list[str]:
    """The ```sh blocks the README marks as run here, in the README's order."""
    text = (REPO / "README.md").read_text()
    return re.findall(re.escape(README_MARKER) + r"\n```sh\n(.*?)```", text, re.DOTALL)


def run_block(block: str, tag: str, port: int, name: str) -> None:
    """Run one block with bash at the root of the checkout, as written but for what a
    shared test machine needs: the image tag is `tag` (not my-site/my-app, which another
    run may be using), and `podman run` is detached on a free 127.0.0.1 port."""
    script = re.sub(r"\bmy-(site|app)\b", tag, block)
    script = script.replace("podman run --rm -p 8000:8000",
                            f"podman run --rm --detach --name {name} -p 127.0.0.1:{port}:8000")
    result = run("bash", "-euo", "pipefail", "-c", script, timeout=900)
    assert result.returncode == 0


def test_readme_blocks_run_as_written(toolchain: Toolchain, tmp_path: Path) -> None:
    """The offline base build, the static-only and onbuild sites from their own
    directories, and the Django example's offline build: each block as the README has
    it, each image then answering what the README says, with its HEALTHCHECK kept."""
    blocks = readme_blocks()
    static_only, django, onbuild, base = blocks  # the README's order
    assert "--format docker" in static_only and "--format docker" in onbuild and "--format docker" in django
    run_block(base, "unused", 0, "unused")  # builds servestatic/base:0.1, which the others are FROM
    checks = [(static_only, "/css/site.css", "body"), (onbuild, "/", "onbuild variant"),
              (django, "/robots.txt", "User-agent")]
    for number, (block, path, text) in enumerate(checks):
        tag = f"localhost/servestatic-test/readme-{number}-{uuid.uuid4().hex[:8]}"
        name = f"servestatic-readme-{uuid.uuid4().hex[:10]}"
        port = free_port()
        try:
            run_block(block, tag, port, name)
            running = Container(name, f"http://127.0.0.1:{port}", time.monotonic())
            running.wait_ready("/readyz", deadline=30)
            response = httpx.get(running.url + path, headers={"Accept-Encoding": "br"})
            assert response.status_code == 200, (path, response.status_code)
            assert text in response.text
            assert inspect("image", tag)["Config"].get("Healthcheck") or inspect("image", tag).get(
                "Healthcheck"), f"{tag} lost its HEALTHCHECK"
        finally:
            podman("rm", "--force", "--time", "0", name, check=False)
            podman("rmi", "--force", tag, check=False)

"""The image's and the buildpack's entrypoint script, run as it is, on this machine.

The script only execs `servestatic launch`; these tests drive the real script with
the checkout's `servestatic` first on PATH (the image tests run it in the image).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

import servestatic
from tests.support import REPO
from tests.support.cli import environment
from tests.support.server import ServerProcess

ENTRYPOINT = REPO / "entrypoint" / "servestatic-entrypoint"


def launcher_environment(**env: str) -> dict[str, str]:
    """This checkout's `servestatic` first on PATH, as the image's venv puts it."""
    scripts = Path(sys.executable).parent
    assert (scripts / "servestatic").exists(), "scripts/setup installs the servestatic command"
    return environment({"PATH": f"{scripts}{os.pathsep}{os.environ.get('PATH', '')}", **env})


def run(*arguments: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", str(ENTRYPOINT), *arguments], capture_output=True, text=True,
                          cwd=cwd, env=launcher_environment(**env), timeout=120)


def test_the_script_only_execs() -> None:
    commands = [line for line in ENTRYPOINT.read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert commands == ['exec servestatic launch -- "$@"']


def test_subcommands_pass_through(tmp_path: Path) -> None:
    assert run("version", cwd=tmp_path).stdout.strip() == servestatic.__version__
    # healthcheck is servestatic's, not an argument of serve: nothing listens, so it fails.
    from tests.support.server import free_port

    health = run("healthcheck", cwd=tmp_path, PORT=str(free_port()))
    assert health.returncode == 1
    assert "Connection refused" in health.stderr
    assert len(health.stderr.strip().splitlines()) == 1


def test_options_go_to_serve(tmp_path: Path) -> None:
    result = run("--help", cwd=tmp_path, COLUMNS="200")
    assert result.returncode == 0
    assert "Usage: servestatic serve" in result.stdout
    assert list(tmp_path.iterdir()) == []  # help compresses nothing
    bad = run("--port", "eighty", cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.strip() == ("servestatic: error: --port: got 'eighty'; "
                                  "expected a whole number at least 1 and at most 65535")


def test_another_first_argument_runs_as_a_command(tmp_path: Path) -> None:
    result = run("sh", "-c", 'echo "$0 $1"', "one", "two", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "one two\n")
    missing = run("no-such-command-anywhere", cwd=tmp_path)
    assert missing.returncode == 127
    assert missing.stderr.strip() == (
        "servestatic: error: no-such-command-anywhere: No such file or directory; expected a "
        "servestatic subcommand, an option of `servestatic serve`, or a command")


def launched(cwd: Path, **env: str) -> ServerProcess:
    """A real server started through the entrypoint script, readiness as ServerProcess's."""
    server = ServerProcess(None, env=env, cwd=cwd)
    server.args = ["sh", str(ENTRYPOINT)]
    server.env["PATH"] = launcher_environment()["PATH"]
    return server


def test_a_root_without_manifest_is_compressed_then_served(site: Path, tmp_path: Path) -> None:
    with launched(tmp_path, SERVESTATIC_ROOT=str(site)) as server:
        assert (site / ".servestatic-manifest.json").exists()
        page = httpx.get(server.url + "/index.html", headers={"Accept-Encoding": "br"})
        assert page.headers["content-encoding"] == "br"
        assert f"{site} has no manifest; compressing it before serving" in server.log()
        # The script's process became gunicorn's master (PID 1 in a container).
        assert server.process is not None
        assert Path(f"/proc/{server.process.pid}/comm").read_text().strip() != "sh"


def test_every_mount_without_manifest_is_compressed_then_served(site: Path, tmp_path: Path) -> None:
    public = tmp_path / "public"
    public.mkdir()
    (public / "robots.txt").write_text("User-agent: *\nDisallow: /private/\n" * 20)
    with launched(tmp_path, SERVESTATIC_MOUNTS=f"/static/={site},/={public}") as server:
        for root in (site, public):
            assert (root / ".servestatic-manifest.json").exists()
            assert f"{root} has no manifest; compressing it before serving" in server.log()
        robots = httpx.get(server.url + "/robots.txt", headers={"Accept-Encoding": "br"})
        assert robots.headers["content-encoding"] == "br"
        assert httpx.get(server.url + "/static/index.html").status_code == 200


def test_the_working_directory_is_never_compressed(site: Path) -> None:
    """Only a root SERVESTATIC_ROOT names is compressed; the default, ".", may be anything."""
    server = launched(site)
    server.env.pop("SERVESTATIC_ROOT", None)
    with server:
        assert httpx.get(server.url + "/index.html").status_code == 200
        assert "scanning the tree instead" in server.log()
    assert not (site / ".servestatic-manifest.json").exists()
    assert not list(site.rglob("*.br"))

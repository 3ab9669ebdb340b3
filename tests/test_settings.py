"""Settings: one table, parsed the same from the environment and from flags."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from servestatic.config.settings import SETTINGS, SettingError, Settings, load_settings
from tests.support import REPO
from tests.support.cli import compress

ENV = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    return subprocess.run([sys.executable, "-m", "servestatic", *args], capture_output=True, text=True,
                          env={**ENV, **(env or {})}, timeout=60, cwd=cwd)


def test_defaults_match_the_dataclass() -> None:
    """The dataclass's defaults are the table's, parsed: an empty environment changes nothing."""
    assert load_settings(environ={}) == Settings()
    for setting in SETTINGS:
        assert getattr(Settings(), setting.name) == setting.parse(setting.default), setting.name


def test_every_setting_has_a_distinct_variable_and_help() -> None:
    variables = [setting.env for setting in SETTINGS]
    assert len(variables) == len(set(variables))
    assert all(setting.help.endswith(".") for setting in SETTINGS)
    assert set(Settings.__dataclass_fields__) - {"explicit"} == {s.name for s in SETTINGS}


@pytest.mark.parametrize(("variable", "value", "accepts"), [
    ("PORT", "eighty", "a whole number at least 1 and at most 65535"),
    ("PORT", "70000", "a whole number at least 1 and at most 65535"),
    ("WEB_CONCURRENCY", "-1", "a whole number at least 0"),
    ("SERVESTATIC_MAX_AGE", "1h", "a whole number at least 0"),
    ("SERVESTATIC_SPA", "maybe", "one of true, false"),
    ("SERVESTATIC_PREFIX", "static", "a URL path starting with '/'"),
    ("SERVESTATIC_APP", "mysite.wsgi", "an import path 'module:attribute'"),
    ("SERVESTATIC_CORS", "example.com", "'*', 'off', or comma-separated origins"),
    # Empty means "the default" everywhere else (and in the chart), which for CORS is '*'.
    ("SERVESTATIC_CORS", "", "'*', 'off', or comma-separated origins"),
    ("SERVESTATIC_CORS", " , ", "'*', 'off', or comma-separated origins"),
    ("SERVESTATIC_ACCESS_LOG", "xml", "one of text, json, off"),
    ("SERVESTATIC_BIND", "localhost", "HOST:PORT"),
    ("SERVESTATIC_IMMUTABLE_PATTERN", "(", "'auto', 'none' or a valid regular expression"),
    ("SERVESTATIC_HEALTH_PATH", "healthz", "a URL path starting with '/'"),
    ("SERVESTATIC_READY_PATH", "", "a URL path starting with '/'"),
    ("SERVESTATIC_APP_HEALTH_PATH", "health", "a URL path starting with '/'"),
])
def test_a_wrong_variable_is_named_with_what_it_accepts(variable: str, value: str, accepts: str) -> None:
    with pytest.raises(SettingError) as raised:
        load_settings(environ={variable: value})
    message = str(raised.value)
    assert message.startswith(f"{variable}: got {value!r}; expected ")
    assert accepts in message
    assert "\n" not in message


@pytest.mark.parametrize(("environ", "message"), [
    ({"SERVESTATIC_READY_PATH": "/healthz"},
     "SERVESTATIC_READY_PATH: got '/healthz', the health path; expected another path than "
     "SERVESTATIC_HEALTH_PATH"),
    ({"SERVESTATIC_APP_HEALTH_PATH": "/health/"},
     "SERVESTATIC_APP_HEALTH_PATH: got '/health/' without an app; expected SERVESTATIC_APP to be set "
     "too, or no app health path"),
    ({"SERVESTATIC_APP": "mysite.wsgi:application", "SERVESTATIC_APP_HEALTH_PATH": "/readyz"},
     "SERVESTATIC_APP_HEALTH_PATH: got '/readyz', which servestatic answers itself; expected a path of "
     "your app other than SERVESTATIC_HEALTH_PATH and SERVESTATIC_READY_PATH"),
])
def test_probe_paths_that_contradict_each_other_are_refused(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingError) as raised:
        load_settings(environ=environ)
    assert str(raised.value) == message


def test_an_empty_cors_stops_serve_with_one_line(site: Path) -> None:
    result = run_cli("serve", str(site), env={"SERVESTATIC_CORS": ""})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "servestatic: error: SERVESTATIC_CORS: got ''; expected '*', 'off', or comma-separated origins "
        "like https://example.com"
    ]


def test_a_wrong_setting_stops_serve_with_one_line(site: Path) -> None:
    result = run_cli("serve", str(site), env={"SERVESTATIC_MAX_AGE": "forever"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "servestatic: error: SERVESTATIC_MAX_AGE: got 'forever'; expected a whole number at least 0"
    ]


def test_a_wrong_web_concurrency_is_ours_to_report(site: Path) -> None:
    """gunicorn reads WEB_CONCURRENCY when imported; servestatic must have checked it first."""
    result = run_cli("check", str(site), env={"WEB_CONCURRENCY": "two"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "servestatic: error: WEB_CONCURRENCY: got 'two'; expected a whole number at least 0 and at most 1024"
    ]


def test_a_flag_wins_over_the_environment_and_is_named_in_errors(site: Path) -> None:
    assert load_settings(environ={"PORT": "9000"}, overrides={"port": "9001"}).port == 9001
    result = run_cli("serve", str(site), "--port", "x", env={"PORT": "9000"})
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "servestatic: error: --port: got 'x'; expected a whole number at least 1 and at most 65535"
    )


def test_serve_help_documents_every_serve_setting_with_its_variable() -> None:
    result = run_cli("serve", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.replace("│", " ").split())  # unwrap rich's table
    for setting in SETTINGS:
        if "serve" in setting.commands and setting.name != "root":
            assert setting.option in text, setting.option
            assert f"env {setting.env}" in text, setting.env


def test_check_accepts_a_compressed_site_and_rejects_a_missing_root(site: Path, tmp_path: Path) -> None:
    compress(site)
    result = run_cli("check", str(site))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok: ")
    assert "from the manifest" in result.stdout

    missing = run_cli("check", str(tmp_path / "nope"))
    assert missing.returncode == 2
    expected = f"servestatic: error: SERVESTATIC_ROOT: {tmp_path / 'nope'} is not a directory"
    assert missing.stderr.strip() == expected


def test_check_rejects_a_broken_header_rules_file(site: Path, tmp_path: Path) -> None:
    rules = tmp_path / "headers.toml"
    rules.write_text('[[rule]]\nglob = "*.html"\nheaders = { "Content-Length" = "1" }\n')
    compress(site)
    result = run_cli("check", str(site), env={"SERVESTATIC_HEADERS_FILE": str(rules)})
    assert result.returncode == 2
    assert result.stderr.strip().startswith("servestatic: error: SERVESTATIC_HEADERS_FILE: ")
    assert "'Content-Length' is not a header a rule may set" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_serve_without_a_manifest_scans_with_a_warning(site: Path) -> None:
    result = run_cli("check", str(site))
    assert result.returncode == 0
    assert "scanning the tree instead" in result.stderr
    assert "from the scan" in result.stdout


def test_readme_documents_every_setting() -> None:
    readme = (REPO / "README.md").read_text()
    for setting in SETTINGS:
        assert f"| `{setting.env}` |" in readme, setting.env


def test_healthcheck_follows_the_server_settings(site: Path) -> None:
    from tests.support.server import ServerProcess, free_port

    compress(site)
    with ServerProcess(site, env={"SERVESTATIC_READY_PATH": "/-/up"}) as server:
        ok = run_cli("healthcheck", env={"SERVESTATIC_BIND": f"127.0.0.1:{server.port}",
                                         "SERVESTATIC_READY_PATH": "/-/up"})
        assert ok.returncode == 0, ok.stderr
        wrong_path = run_cli("healthcheck", env={"SERVESTATIC_BIND": f"0.0.0.0:{server.port}"})
        assert wrong_path.returncode == 1
        assert wrong_path.stderr.strip() == f"servestatic: error: 0.0.0.0:{server.port}/readyz answered 404"
    nobody = run_cli("healthcheck", env={"PORT": str(free_port())})
    assert nobody.returncode == 1
    assert len(nobody.stderr.strip().splitlines()) == 1
    assert "Connection refused" in nobody.stderr

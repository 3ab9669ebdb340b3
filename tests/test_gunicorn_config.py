"""gunicorn's own settings, layered: servestatic's defaults < gunicorn config file <
GUNICORN_CMD_ARGS < SERVESTATIC_* variables and flags; refused settings; bad input.

The layering is read back through gunicorn's Config; what it does is checked on a
real server: proxy headers from a non-loopback peer, worker recycling, statsd.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from servestatic.config.settings import load_settings
from servestatic.server.gunicornconfig import REQUIRED, WORKER_CLASS, ConfigError, Layers, build_config
from tests.support import needs_tool, wait_for
from tests.support.cli import compress, environment
from tests.support.server import ServerProcess
from tests.support.tls import self_signed_certificate

WHOAMI = "tests.apps.whoami:application"


def layered(environ: dict[str, str], overrides: dict[str, str] | None = None) -> Layers:
    return build_config(load_settings(environ, overrides), environ)


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working directory, where gunicorn looks for gunicorn.conf.py."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_each_layer_wins_over_the_one_below(in_tmp: Path) -> None:
    (in_tmp / "gunicorn.conf.py").write_text(
        "threads = 4\nworkers = 5\nkeepalive = 10\nmax_requests = 50\nlimit_request_line = 2048\n"
        "not_a_gunicorn_setting = 1\n")
    layers = layered({
        "GUNICORN_CMD_ARGS": "--threads 6 --max-requests 7",
        "SERVESTATIC_THREADS": "12",
        "WEB_CONCURRENCY": "3",
    })
    config = layers.config
    assert config.threads == 12  # SERVESTATIC_THREADS over the command line over the file
    assert config.max_requests == 7  # the command line over the file
    assert config.workers == 5  # the file over WEB_CONCURRENCY, a default as gunicorn treats it
    assert config.keepalive == 10  # the file over servestatic's default
    assert config.limit_request_line == 2048
    assert config.timeout == 30  # servestatic's default
    assert config.worker_class_str == WORKER_CLASS
    assert layers.source("threads") == "servestatic settings"
    assert layers.source("max_requests") == "GUNICORN_CMD_ARGS"
    assert layers.source("workers") == str(in_tmp / "gunicorn.conf.py")
    assert layers.source("timeout") == "servestatic"


def test_flags_and_servestatic_variables_win_port_and_web_concurrency_do_not(in_tmp: Path) -> None:
    (in_tmp / "gunicorn.conf.py").write_text("bind = ['127.0.0.1:7000']\nworkers = 5\n")
    assert layered({"PORT": "9000"}).config.bind == ["127.0.0.1:7000"]
    assert layered({"SERVESTATIC_BIND": "127.0.0.1:7001"}).config.bind == ["127.0.0.1:7001"]
    assert layered({}, {"port": "7002"}).config.bind == ["0.0.0.0:7002"]
    assert layered({"WEB_CONCURRENCY": "2"}, {"workers": "3"}).config.workers == 3


def test_without_a_config_file_the_defaults_and_port_apply(in_tmp: Path) -> None:
    config = layered({"PORT": "9000", "WEB_CONCURRENCY": "3"}).config
    assert (config.bind, config.workers, config.threads, config.max_requests) == (["0.0.0.0:9000"], 3, 8, 0)


def test_the_config_file_can_be_named(in_tmp: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    (in_tmp / "gunicorn.conf.py").write_text("threads = 4\n")
    elsewhere = tmp_path_factory.mktemp("conf") / "origin.py"
    elsewhere.write_text("threads = 5\n")
    assert layered({"SERVESTATIC_GUNICORN_CONFIG": str(elsewhere)}).config.threads == 5
    assert layered({"GUNICORN_CMD_ARGS": f"--config {elsewhere}"}).config.threads == 5
    module = in_tmp / "originconf.py"
    module.write_text("threads = 3\n")
    sys.path.insert(0, str(in_tmp))
    try:
        assert layered({"SERVESTATIC_GUNICORN_CONFIG": "python:originconf"}).config.threads == 3
    finally:
        sys.path.remove(str(in_tmp))


@pytest.mark.parametrize(("conf", "arguments", "message"), [
    ("worker_class = 'sync'\n", "",
     "{conf}: gunicorn setting worker_class='sync' is refused: servestatic answers requests in its "
     f"own worker (expected {WORKER_CLASS!r})"),
    ("", "-k gthread",
     "GUNICORN_CMD_ARGS: gunicorn setting worker_class='gthread' is refused: servestatic answers "
     f"requests in its own worker (expected {WORKER_CLASS!r})"),
    ("", "--no-sendfile",
     "GUNICORN_CMD_ARGS: gunicorn setting sendfile=False is refused: servestatic sends files with "
     "sendfile (expected True)"),
    ("wsgi_app = 'mysite.wsgi:application'\n", "",
     "{conf}: gunicorn setting wsgi_app='mysite.wsgi:application' is refused: servestatic serves "
     "the app named by SERVESTATIC_APP (expected None)"),
])
def test_settings_that_would_break_servestatic_are_refused(
        in_tmp: Path, conf: str, arguments: str, message: str) -> None:
    if conf:
        (in_tmp / "gunicorn.conf.py").write_text(conf)
    with pytest.raises(ConfigError) as raised:
        layered({"GUNICORN_CMD_ARGS": arguments})
    assert str(raised.value) == message.format(conf=in_tmp / "gunicorn.conf.py")


def test_the_refused_table_names_gunicorn_settings() -> None:
    from gunicorn.config import Config

    assert {required.setting for required in REQUIRED} <= set(Config().settings)


# --- bad input: one line naming the source, exit 2, nothing started ----------------------

ENV = environment()


def servestatic(command: str, site: Path, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "servestatic", command, str(site)], capture_output=True,
                          text=True, env={**ENV, "SERVESTATIC_BIND": "127.0.0.1:0", **env}, cwd=cwd,
                          timeout=60)


@pytest.mark.parametrize(("conf", "env", "message"), [
    ("import not_a_module_anywhere\n", {},
     "./gunicorn.conf.py: {cwd}/gunicorn.conf.py failed to load: ModuleNotFoundError: "
     "No module named 'not_a_module_anywhere'"),
    ("threads = \n", {}, "./gunicorn.conf.py: {cwd}/gunicorn.conf.py failed to load: SyntaxError: "),
    ("max_requests = 'often'\n", {},
     "{cwd}/gunicorn.conf.py: gunicorn setting max_requests='often': "),
    ("", {"SERVESTATIC_GUNICORN_CONFIG": "/nonexistent/gunicorn.conf.py"},
     "SERVESTATIC_GUNICORN_CONFIG: /nonexistent/gunicorn.conf.py is not a file; expected a gunicorn "
     "config file (gunicorn.conf.py) or python:module.name"),
    ("", {"GUNICORN_CMD_ARGS": "--max-requests often"},
     "GUNICORN_CMD_ARGS: argument --max-requests: invalid int value: 'often'; expected gunicorn's "
     "command-line options, such as --max-requests 1000"),
    ("", {"GUNICORN_CMD_ARGS": "--no-such-option"},
     "GUNICORN_CMD_ARGS: unrecognized arguments: --no-such-option; expected gunicorn's command-line "
     "options, such as --max-requests 1000"),
    ("", {"GUNICORN_CMD_ARGS": "--statsd-prefix 'unclosed"},
     "GUNICORN_CMD_ARGS: No closing quotation; expected gunicorn's command-line options, such as "
     "--max-requests 1000"),
    ("", {"GUNICORN_CMD_ARGS": "--version"},
     "GUNICORN_CMD_ARGS: asks for help or the version; expected settings, such as --max-requests 1000"),
    ("", {"GUNICORN_CMD_ARGS": "mysite.wsgi:application"},
     "GUNICORN_CMD_ARGS: names an app; expected options only (servestatic serves the app named by "
     "SERVESTATIC_APP)"),
    ("", {"SENDFILE": "0"},
     "SENDFILE: gunicorn setting sendfile=False is refused: servestatic sends files with sendfile "
     "(expected True)"),
])
@pytest.mark.parametrize("command", ["check", "serve"])
def test_bad_gunicorn_configuration_stops_with_one_line(
        site: Path, tmp_path: Path, command: str, conf: str, env: dict[str, str], message: str) -> None:
    compress(site)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    if conf:
        (cwd / "gunicorn.conf.py").write_text(conf)
    result = servestatic(command, site, cwd, **env)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("servestatic: error: " + message.format(cwd=cwd)), lines[0]
    assert "ok:" not in result.stdout and "Booting worker" not in result.stdout + result.stderr


# --- on a real server ----------------------------------------------------------------------


def second_loopback_address_works() -> bool:
    try:
        with socket.socket() as probe:
            probe.bind(("127.0.0.3", 0))
        return True
    except OSError:
        return False


def serve_on(site: Path, address: str, env: dict[str, str]) -> ServerProcess:
    server = ServerProcess(site, env={"SERVESTATIC_APP": WHOAMI, **env})
    server.env["SERVESTATIC_BIND"] = f"{address}:{server.port}"
    server.url = f"http://{address}:{server.port}"
    return server


def whoami(server: ServerProcess, client: httpx.Client, **headers: str) -> dict[str, object]:
    response = client.get(server.url + "/app/whoami", headers=headers)
    assert response.status_code == 200
    answer: dict[str, object] = response.json()
    return answer


@pytest.mark.parametrize(("allow", "expected"), [("*", "https"), (None, "http")])
def test_forwarded_allow_ips_lets_the_app_trust_x_forwarded_proto(
        site: Path, allow: str | None, expected: str) -> None:
    """A peer that is not loopback's 127.0.0.1 claims https; only FORWARDED_ALLOW_IPS trusts it."""
    if not second_loopback_address_works():
        pytest.skip("127.0.0.3 is not usable here (Linux answers all of 127/8 on lo)")
    compress(site)
    env = {} if allow is None else {"FORWARDED_ALLOW_IPS": allow}
    with serve_on(site, "127.0.0.2", env) as server, \
            httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.3")) as client:
        answer = whoami(server, client, **{"X-Forwarded-Proto": "https"})
        assert answer["remote_addr"] == "127.0.0.3"
        assert answer["scheme"] == expected
        assert whoami(server, client)["scheme"] == "http"


def test_max_requests_from_gunicorn_cmd_args_recycles_workers(site: Path) -> None:
    compress(site)
    with ServerProcess(site, env={"SERVESTATIC_APP": WHOAMI,
                                  "GUNICORN_CMD_ARGS": "--max-requests 3"}) as server:
        # The readiness probe was the first request the worker counted.
        with httpx.Client() as client:
            first = {whoami(server, client)["pid"] for _ in range(2)}
            assert len(first) == 1
            client.get(server.url + "/index.html").raise_for_status()  # a static hit counts too
        with httpx.Client() as client:
            after = whoami(server, client)["pid"]
        assert after not in first
        assert "Autorestarting worker after current request." in server.log()


@pytest.mark.parametrize("access_log", ["text", "off"])
def test_statsd_from_gunicorn_cmd_args(site: Path, access_log: str) -> None:
    """gunicorn's own statsd logger, switched on through GUNICORN_CMD_ARGS alone: every
    request counted (a static hit from the event loop, a request for the app through
    ASGI), with the access log on or off."""
    compress(site)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as statsd:
        statsd.bind(("127.0.0.1", 0))
        statsd.settimeout(10)
        host = f"127.0.0.1:{statsd.getsockname()[1]}"
        env = {"GUNICORN_CMD_ARGS": f"--statsd-host {host} --statsd-prefix web",
               "SERVESTATIC_ACCESS_LOG": access_log, "SERVESTATIC_APP": WHOAMI}
        with ServerProcess(site, env=env) as server:
            received = []
            for path, status in (("/index.html", 200), ("/app", 200), ("/index.html", 405)):
                method = "GET" if status == 200 else "POST"
                assert httpx.request(method, server.url + path).status_code == status
            # The health probe and three requests; each is a duration, a count and a status.
            while (counted := b"".join(received)).count(b"web.gunicorn.requests:1|c") < 4 or \
                    b"web.gunicorn.request.status.405:1|c" not in counted:
                received.append(statsd.recv(65536))  # times out (fails) if statsd never comes
        assert counted.count(b"web.gunicorn.request.status.200:1|c") == 3


def test_a_config_file_in_the_working_directory_reaches_a_real_server(site: Path, tmp_path: Path) -> None:
    compress(site)
    (tmp_path / "gunicorn.conf.py").write_text(
        "def on_starting(server):\n    server.log.info('hook from gunicorn.conf.py ran')\n")
    with ServerProcess(site, cwd=tmp_path) as server:
        httpx.get(server.url + "/index.html").raise_for_status()
        assert "hook from gunicorn.conf.py ran" in server.log()


def test_tls_from_gunicorn_flags_reaches_the_loop_and_the_app(site: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """gunicorn's --certfile/--keyfile: static hits (answered in the event loop) and the
    app's answers over TLS, several on one kept-alive connection. The worker sets up
    each accepted connection itself (worker._accept_one), with gunicorn's TLS context."""
    cert, key = self_signed_certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # httpx, also the readiness probe, trusts it
    compress(site)
    server = ServerProcess(site, env={"GUNICORN_CMD_ARGS": f"--certfile {cert} --keyfile {key}",
                                      "SERVESTATIC_APP": WHOAMI})
    server.url = server.url.replace("http://", "https://")
    with server, httpx.Client(base_url=server.url, headers={"Accept-Encoding": "identity"}) as client:
        for _ in range(3):
            response = client.get("/index.html")
            assert response.status_code == 200
            assert response.content == (site / "index.html").read_bytes()
        assert client.get("/some/route").status_code == 200
        with pytest.raises(httpx.TransportError):  # plain HTTP on the TLS port gets nowhere
            httpx.get(server.url.replace("https://", "http://") + "/index.html", timeout=2)


@pytest.mark.parametrize(("args", "backlog"), [("", 2048), ("--backlog 512", 512)])
def test_the_listening_socket_keeps_gunicorn_s_backlog(site: Path, args: str, backlog: int) -> None:
    """asyncio's create_server listen()s the shared socket again with a backlog of 100;
    the worker restores gunicorn's `backlog` (default 2048), which `ss` reads back."""
    ss = needs_tool("ss")
    compress(site)

    def listening() -> list[str]:  # State Recv-Q Send-Q (the backlog) Local-Address ...
        return subprocess.run([ss, "-ltnH", f"( sport = :{server.port} )"], capture_output=True,
                              text=True, check=True).stdout.split()

    with ServerProcess(site, env={"GUNICORN_CMD_ARGS": args}) as server:
        # The worker sets it right after its first heartbeat.
        wait_for(lambda: listening()[2:3] == [str(backlog)], 10,
                 lambda: f"backlog {backlog}; ss says {listening()}")

"""The request as a WSGI environ: the one place any part of servestatic builds one.

`StaticApp.decide` and `StaticApp.route` (core/decision.py) read a request as
PEP 3333 keys, and a WSGI app wants the whole PEP 3333 environ. Four places
turn a request into one, from what each has in hand, and all of them build it
here:

- the event loop's head reader (server/requesthead.py), from the raw header
  lines it has just checked: `add_header_lines`;
- the ASGI front (fronts/asgifront.py), from an ASGI scope: `scope_environ`,
  the little `decide` reads;
- the WSGI bridge (fronts/wsgibridge.py), from an ASGI scope: `wsgi_environ`,
  the whole of PEP 3333 for the user's app;
- the worker's access-log environ (server/connection.py), from gunicorn's parsed
  request: `request_environ` with the two headers the log line shows.

What they share is the start of every environ (`request_environ`), the
header-name-to-key rule and the joining of a repeated field.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote_to_bytes

Environ = dict[str, Any]
Scope = dict[str, Any]

_ENVIRON_KEYS: dict[bytes, str] = {}  # header name -> environ key, made once per name seen


def environ_key(name: bytes) -> str:
    """The WSGI environ key of a request header name (PEP 3333: HTTP_*, but CONTENT_TYPE and
    CONTENT_LENGTH bare). Kept per name: the same few names come with every request."""
    key = _ENVIRON_KEYS.get(name)
    if key is None:
        key = name.decode("latin-1").upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        if len(_ENVIRON_KEYS) < 1024:  # names are few; a client sending endless new ones gains nothing
            _ENVIRON_KEYS[name] = key
    return key


def add_headers(environ: Environ, headers: Iterable[tuple[bytes, bytes]]) -> None:
    """Request headers into an environ; a repeated field's values joined with commas (RFC 9110 5.3)."""
    for name, value in headers:
        key = environ_key(name)
        text = value.decode("latin-1")
        previous = environ.get(key)
        environ[key] = text if previous is None else previous + "," + text


def add_header_lines(environ: Environ, lines: list[bytes], max_field_size: int) -> bool:
    """Checked header lines (`name:value`, no CRLF) into an environ, as `add_headers` does;
    False, leaving the request to gunicorn, for a line whose size with its CRLF is over
    `max_field_size` (0: no limit; gunicorn counts the CRLF) or a second Host or
    Content-Type (RFC 9110 5.3 singletons: gunicorn answers them with its 400).

    The event loop's head reader calls it on every static hit, so the loop is
    written out rather than building pairs for `add_headers` (1 µs more a head).
    """
    for line in lines:
        if max_field_size and len(line) + 2 > max_field_size:
            return False
        name, _, value = line.partition(b":")
        key = environ_key(name)
        text = value.strip(b" \t").decode("latin-1")
        previous = environ.get(key)
        if previous is not None:
            if key == "HTTP_HOST" or key == "CONTENT_TYPE":
                return False
            text = previous + "," + text
        environ[key] = text
    return True


def request_environ(method: str, path: str, query: str, headers: Iterable[tuple[bytes, bytes]],
                    script_name: str = "") -> Environ:
    """What every environ starts with: the method, the path (PATH_INFO: bytes as latin-1),
    the query, the mount point and the request's headers."""
    environ: Environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
                        "SCRIPT_NAME": script_name}
    add_headers(environ, headers)
    return environ


def request_path(target: bytes) -> str | None:
    """The table key of a request-target: its path, percent-decoded, bytes as latin-1 (like
    WSGI's PATH_INFO); None for a target that names no path (`*`, authority-form).

    The absolute-form (`http://host/path`, RFC 9112 3.2.2) must be accepted by a
    server; its path is what names the file.
    """
    if target[:1] != b"/":
        scheme, separator, rest = target.partition(b"://")
        if not separator or scheme.lower() not in (b"http", b"https"):
            return None
        slash = rest.find(b"/")
        target = rest[slash:] if slash >= 0 else b"/"
    path = target.partition(b"?")[0]
    return (unquote_to_bytes(path) if b"%" in path else path).decode("latin-1")


def scope_path(scope: Scope) -> str:
    """The table key of an ASGI request: its percent-decoded path bytes as latin-1, like PATH_INFO.

    From `raw_path` when the server gives it, so bytes that are not UTF-8 find
    (or miss) the same entries as through WSGI.
    """
    raw = scope.get("raw_path")
    path = request_path(raw) if raw else None
    if path is None:
        return scope["path"].encode("utf-8", "surrogateescape").decode("latin-1")
    return path


def scope_environ(scope: Scope, path: str) -> Environ:
    """The little of an environ `StaticApp.decide` reads, from an ASGI scope and its table key."""
    environ = request_environ(scope["method"], path, scope.get("query_string", b"").decode("latin-1"),
                              scope["headers"], scope.get("root_path", ""))
    environ["wsgi.url_scheme"] = scope.get("scheme", "http")  # the server's (core/security.py)
    return environ


def wsgi_environ(scope: Scope) -> Environ:
    """PEP 3333's environ from an ASGI HTTP scope, for the user's WSGI app.

    PATH_INFO and SCRIPT_NAME are the scope's text as latin-1 of its UTF-8
    bytes (PEP 3333's "bytes as latin-1"), and wsgi.input is the caller's to add.
    """
    server = scope.get("server") or ("localhost", 80)
    client = scope.get("client")
    environ = request_environ(
        scope["method"], scope["path"].encode("utf-8", "surrogateescape").decode("latin-1"),
        scope.get("query_string", b"").decode("latin-1"), scope["headers"],
        scope.get("root_path", "").encode("utf-8").decode("latin-1"))
    environ.update({
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]) if server[1] is not None else "",
        "SERVER_PROTOCOL": "HTTP/" + scope.get("http_version", "1.1"),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
    })
    raw_path = scope.get("raw_path")
    if raw_path is not None:
        query = scope.get("query_string")
        environ["RAW_URI"] = (raw_path + (b"?" + query if query else b"")).decode("latin-1")
    if client:
        environ["REMOTE_ADDR"] = str(client[0])
        environ["REMOTE_PORT"] = str(client[1])
    return environ

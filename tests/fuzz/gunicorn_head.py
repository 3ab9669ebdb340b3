"""gunicorn's own reading of a request head, to hold the loop's head reader against.

The loop answers a static hit from `parse_head` (servestatic/server/requesthead.py)
without gunicorn's parser ever seeing it, so whatever the loop accepts must be a
request gunicorn would have accepted too, read the same way; otherwise the same
bytes get a 200 from the loop and a 400 from gunicorn depending on nothing but which
reader looked first. This is what gunicorn 27's ASGI worker does with a head
(gunicorn/asgi/protocol.py, `ASGIProtocol._on_headers_complete`):

1. `PythonProtocol` parses it: the parser servestatic's worker gets when the optional
   C parser (gunicorn-h1c, the `fast` extra) is not installed; with it installed, its
   `H1CProtocol` can be compared too (`parser_classes`);
2. `CallbackRequest.from_parser` checks it again (singleton fields, Transfer-Encoding);
3. the header policy (`_RequestHeaderPolicy`) runs: contradictory scheme headers
   from a trusted peer are refused, names with `_` dropped.

Any of these raising is gunicorn's 400 (or 431, 417).
"""

from __future__ import annotations

from dataclasses import dataclass

from gunicorn.asgi.parser import CallbackRequest, ParseError, PythonProtocol
from gunicorn.asgi.protocol import _RequestHeaderPolicy
from gunicorn.config import Config
from gunicorn.http.errors import ParseException

# A peer in gunicorn's default forwarded_allow_ips: its scheme headers are honoured,
# so the header policy is at its strictest.
TRUSTED_PEER = ("127.0.0.1", 40000)


class GunicornRefused(Exception):
    """gunicorn answers this head with an error; the message says which check refused it."""


@dataclass(frozen=True)
class Reading:
    """What a head means once read: what the loop and gunicorn must agree on."""

    method: str
    target: bytes
    version: tuple[int, int]
    # Header fields as WSGI environ keys (PEP 3333), repeated fields joined with ","
    # as RFC 9110 5.3 allows: the form in which StaticApp.decide reads them.
    headers: dict[str, str]
    keep_alive: bool


def environ_headers(fields: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Header fields as PEP 3333 keys, written out here rather than taken from
    servestatic/fronts/environ.py, so that a slip there shows up as a difference."""
    headers: dict[str, str] = {}
    for name, value in fields:
        key = name.decode("latin-1").upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        text = value.decode("latin-1")
        headers[key] = text if key not in headers else headers[key] + "," + text
    return headers


def gunicorn_config(limits: tuple[int, int, int], **settings: object) -> Config:
    """gunicorn's Config with the loop's (limit_request_line, limit_request_fields,
    limit_request_field_size) and any other settings by name."""
    cfg = Config()
    line, fields, field_size = limits
    cfg.set("limit_request_line", line)
    cfg.set("limit_request_fields", fields)
    cfg.set("limit_request_field_size", field_size)
    for name, value in settings.items():
        cfg.set(name, value)
    return cfg


def parser_classes() -> dict[str, type]:
    """gunicorn's HTTP/1 parsers installed here: always its Python one, and the C one
    (gunicorn-h1c, servestatic's `fast` extra) when it is installed, as gunicorn picks it then."""
    classes: dict[str, type] = {"python": PythonProtocol}
    try:
        from gunicorn_h1c import H1CProtocol  # type: ignore[import-not-found]
    except ImportError:
        return classes
    classes["h1c"] = H1CProtocol
    return classes


def _h1c_errors() -> tuple[type[Exception], ...]:
    """gunicorn-h1c's two unrelated ParseError classes (what gunicorn catches from it)."""
    try:
        import gunicorn_h1c  # type: ignore[import-not-found]
    except ImportError:
        return ()
    candidates = (getattr(gunicorn_h1c, "ParseError", None),
                  getattr(getattr(gunicorn_h1c, "_protocol", None), "ParseError", None))
    return tuple(error for error in candidates if isinstance(error, type) and issubclass(error, Exception))


def read_with_gunicorn(head: bytes, cfg: Config, peer: tuple[str, int] = TRUSTED_PEER,
                       parser_class: type = PythonProtocol) -> Reading:
    """gunicorn's reading of one whole head (ending in its blank line) by `parser_class`;
    raises GunicornRefused when gunicorn would answer it with an error."""
    complete: list[bool] = []
    line_limit = cfg.limit_request_line
    if line_limit == 0 and parser_class is not PythonProtocol:
        line_limit = 1024 * 1024  # what gunicorn gives its C parser for "no limit" (asgi/protocol.py)
    parser = parser_class(
        on_headers_complete=lambda: complete.append(True) or False,
        limit_request_line=line_limit,
        limit_request_fields=cfg.limit_request_fields,
        limit_request_field_size=cfg.limit_request_field_size,
        permit_unconventional_http_method=cfg.permit_unconventional_http_method,
        permit_unconventional_http_version=cfg.permit_unconventional_http_version,
    )
    try:
        parser.feed(head)
        if not complete:
            raise GunicornRefused("the parser did not finish the head")
        request = CallbackRequest.from_parser(parser)
        _RequestHeaderPolicy(cfg, peer, request.scheme, request.version).apply(request)
    except (ParseError, ParseException, *_h1c_errors()) as error:
        raise GunicornRefused(f"{type(error).__name__}: {error}") from None
    return Reading(method=request.method, target=bytes(parser.path), version=request.version,
                   headers=environ_headers(request.headers_bytes), keep_alive=not request.should_close())

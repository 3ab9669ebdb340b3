"""The scheme of a request the event loop answers itself, as gunicorn would give it.

Only needed when a static answer depends on it (HSTS or the https redirect,
core/security.py); the worker then asks `scheme_reader` once per connection and
puts the scheme in each loop request's environ as `wsgi.url_scheme`, where the
ASGI and WSGI fronts have the server's. gunicorn's rule: https on a TLS connection,
unless a secure_scheme_headers field from a peer in forwarded_allow_ips says
otherwise; such a field saying https makes it https. Whether this peer is trusted
is decided by gunicorn's own header policy, as for the requests gunicorn parses.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from gunicorn.asgi import protocol as gunicorn_protocol

from servestatic.core.security import forwarded_scheme

# gunicorn internals used here, checked by tests/test_gunicorn_internals.py.
SCHEME_INTERNALS = {
    gunicorn_protocol: ("_RequestHeaderPolicy",),
    gunicorn_protocol._RequestHeaderPolicy: ("_peer_trusted_for_forwarded",),
    gunicorn_protocol.ASGIProtocol: ("_is_ssl",),
}


def scheme_reader(protocol: Any, peer: Any) -> Callable[[dict[str, Any]], str] | None:
    """environ -> "http" or "https" for this connection, or None when no answer depends on it."""
    static = protocol.static
    if static is None or not static.security.needs_scheme:
        return None
    policy = gunicorn_protocol._RequestHeaderPolicy(protocol.cfg, peer, "http", (1, 1))
    trusted, _forwarders = policy._peer_trusted_for_forwarded()
    keys = tuple(("HTTP_" + name.upper().replace("-", "_"), value) for name, value in trusted.items())
    return partial(forwarded_scheme, tls=bool(protocol._is_ssl), trusted=keys)

"""The peers' WSGI app: WhiteNoise or PyPI ServeStatic wrapping the trivial hello app.

Run by gunicorn inside the peer's own venv (.cache/bench-venvs/serve-*), with
this directory as gunicorn's --chdir, so `servestatic` here is PyPI's package,
not ours. BENCH_PEER picks the library, BENCH_ROOT the tree to serve.
Both are configured as their docs recommend for a static root: index files on,
autorefresh off, default max_age.
"""

import os

from serve_hello import application as hello

_peer = os.environ["BENCH_PEER"]
_root = os.environ["BENCH_ROOT"]

if _peer == "whitenoise":
    from whitenoise import WhiteNoise as _Wrapper
elif _peer == "servestatic":
    from servestatic import ServeStatic as _Wrapper
else:
    raise SystemExit(f"BENCH_PEER: got {_peer!r}; expected whitenoise or servestatic")

application = _Wrapper(hello, root=_root, index_file=True)

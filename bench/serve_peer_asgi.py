"""The ASGI peer: PyPI ServeStatic's `ServeStaticASGI` wrapping the bench's FastAPI app.

Run by gunicorn (`-k asgi`) or uvicorn inside the peer's own venv
(.cache/bench-venvs/serve-servestatic-*), with this directory as the working
directory, so `servestatic` here is PyPI's package, not ours. BENCH_ROOT is the
tree to serve. Configured as for the WSGI peers (serve_peer_app.py): index files
on, autorefresh off, default max_age.
"""

import os

from serve_fastapi_app import app

from servestatic import ServeStaticASGI

application = ServeStaticASGI(app, root=os.environ["BENCH_ROOT"], index_file=True)

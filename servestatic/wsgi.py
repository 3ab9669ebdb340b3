"""`servestatic.wsgi:application`, for people who run gunicorn (or another WSGI server) themselves.

    gunicorn servestatic.wsgi:application

It reads the same SERVESTATIC_* environment as `servestatic serve`; server
settings (PORT, WEB_CONCURRENCY, threads) are then the server's own business.
SERVESTATIC_APP must name a WSGI app here; `servestatic.asgi:application` is
the ASGI counterpart.
"""

from servestatic.config.settings import load_settings
from servestatic.fronts.prepare import prepare
from servestatic.fronts.wsgifront import WSGIApp

application = WSGIApp(prepare(load_settings()))

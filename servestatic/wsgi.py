"""`servestatic.wsgi:application`, for people who run gunicorn (or another server) themselves.

    gunicorn servestatic.wsgi:application

It reads the same SERVESTATIC_* environment as `servestatic serve`; server
settings (PORT, WEB_CONCURRENCY, threads) are then the server's own business.
"""

from servestatic.server import prepare
from servestatic.settings import load_settings

application = prepare(load_settings())

"""`servestatic.asgi:application`, for people who run an ASGI server themselves.

    uvicorn servestatic.asgi:application

It reads the same SERVESTATIC_* environment as `servestatic serve`; the app
named by SERVESTATIC_APP may be ASGI or WSGI (run in a thread pool of
SERVESTATIC_THREADS threads). Static files then go through ASGI messages,
without the event-loop fast path that `servestatic serve` adds.
"""

from servestatic.config.settings import load_settings
from servestatic.fronts.asgifront import ASGIApp
from servestatic.fronts.prepare import prepare

_settings = load_settings()
application = ASGIApp(prepare(_settings), _settings.threads, _settings.timeout)

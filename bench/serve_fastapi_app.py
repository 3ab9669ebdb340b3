"""The small FastAPI app of the ASGI suite: what a user's app costs on a miss.

The same module is chained behind ours (`SERVESTATIC_APP=serve_fastapi_app:app`),
wrapped by PyPI ServeStatic's `ServeStaticASGI` (serve_peer_asgi.py), and run
alone on gunicorn's `asgi` worker, the baseline a miss is measured against.
Two routes, both under /app/ so that no static file shadows them: a plain-text
hello (the cheapest answer FastAPI gives) and a JSON route with a typed path
parameter and a query parameter (the work a typical API request does).
"""

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from serve_hello import BODY

HELLO = BODY.decode()  # the same answer as the WSGI suite's app

app = FastAPI()


@app.get("/app/hello", response_class=PlainTextResponse)
async def hello() -> str:
    return HELLO


@app.get("/app/items/{item_id}")
async def item(item_id: int, q: str | None = None) -> dict[str, int | str | None]:
    return {"item_id": item_id, "q": q}

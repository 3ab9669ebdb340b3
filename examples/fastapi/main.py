"""A small FastAPI project behind servestatic: /static/ from the compressed static
directory, the API and the page from FastAPI.

    servestatic compress static
    SERVESTATIC_ROOT=static SERVESTATIC_PREFIX=/static/ SERVESTATIC_APP=main:app servestatic serve

FastAPI's own StaticFiles mount is not used: servestatic answers /static/ before
a request reaches the app, with brotli, immutable caching and ETags per encoding.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import HTMLResponse, StreamingResponse

HERE = Path(__file__).resolve().parent
PAGE = (HERE / "templates" / "index.html").read_text()
state: dict[str, int] = {}


@asynccontextmanager
async def lifespan(app: FastAPI):
    state["started"] = 1  # a connection pool or a cache would be opened here, once per worker
    yield
    state.clear()


app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None)


@app.get("/", response_class=HTMLResponse)
async def home() -> str:
    return PAGE


@app.get("/api/items/{item_id}")
async def item(item_id: int, q: str | None = None) -> dict[str, object]:
    return {"item_id": item_id, "q": q, "started": state.get("started", 0)}


@app.post("/api/echo")
async def echo(request: Request) -> dict[str, object]:
    body = await request.body()
    return {"bytes": len(body), "content_type": request.headers.get("content-type")}


@app.get("/api/countdown")
async def countdown() -> StreamingResponse:
    async def lines():
        for number in range(3, 0, -1):
            yield f"{number}\n"
    return StreamingResponse(lines(), media_type="text/plain")


@app.websocket("/ws")
async def shout(websocket: WebSocket) -> None:
    await websocket.accept()
    while True:
        text = await websocket.receive_text()
        await websocket.send_text(text.upper())

"""CORS: `*` by default, an allow-list that echoes listed origins only (with `Vary: Origin`
always), preflight where CORS is on, and nothing at all with SERVESTATIC_CORS=off.
Timing-Allow-Origin follows it by default (SERVESTATIC_TIMING_ALLOW_ORIGIN=cors), or is
`*` or off on its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.http import raw_request
from tests.support.server import ServerProcess, serving

SCRIPT = "/js/analytics.js"  # has variants
PLAIN = "/robots.txt"  # has none
A, B = "https://a.example", "https://b.example"
PREFLIGHT = {"Access-Control-Request-Method": "GET"}


@pytest.fixture(scope="module")
def any_origin(root: Path) -> Iterator[ServerProcess]:
    with serving(root) as running:
        yield running


@pytest.fixture(scope="module")
def allow_list(root: Path) -> Iterator[ServerProcess]:
    with serving(root, {"SERVESTATIC_CORS": f"{A},{B}"}) as running:
        yield running


@pytest.fixture(scope="module")
def cors_off(root: Path) -> Iterator[ServerProcess]:
    with serving(root, {"SERVESTATIC_CORS": "off"}) as running:
        yield running


def etag_of(server: ServerProcess, path: str) -> str:
    return raw_request(server, path).header("ETag")


def conditional_headers(server: ServerProcess, path: str) -> list[dict[str, str]]:
    """One request for each kind of answer: 200, 304, 206, 416, 412."""
    return [{}, {"If-None-Match": etag_of(server, path)}, {"Range": "bytes=0-3"},
            {"Range": "bytes=99999-"}, {"If-Match": '"other"'}]


# --- "*" (the default)


@pytest.mark.parametrize("origin", [None, A, "https://anyone.example"])
@pytest.mark.parametrize("path", [SCRIPT, PLAIN])
def test_any_origin_gets_star_on_every_kind_of_answer(any_origin: ServerProcess, origin: str | None,
                                                      path: str) -> None:
    for extra in conditional_headers(any_origin, path):
        headers = {**extra, **({"Origin": origin} if origin else {})}
        response = raw_request(any_origin, path, headers=headers)
        assert response.status in {200, 304, 206, 416, 412}
        assert response.header("Access-Control-Allow-Origin") == "*", (headers, response.status)
        assert response.header("Timing-Allow-Origin") == "*", (headers, response.status)
        assert "Origin" not in (response.header("Vary") or "")


def test_preflight_with_any_origin(any_origin: ServerProcess) -> None:
    response = raw_request(any_origin, SCRIPT, "OPTIONS",
                           {"Origin": A, **PREFLIGHT, "Access-Control-Request-Headers": "x-custom, range"})
    assert response.status == 204
    assert response.header("Access-Control-Allow-Origin") == "*"
    assert response.header("Access-Control-Allow-Methods") == "GET, HEAD"
    assert response.header("Access-Control-Allow-Headers") == "x-custom, range"
    assert response.header("Access-Control-Max-Age") == "86400"
    assert response.body == b""


def test_preflight_does_not_echo_a_malformed_header_list(any_origin: ServerProcess) -> None:
    response = raw_request(any_origin, SCRIPT, "OPTIONS",
                           {"Origin": A, **PREFLIGHT, "Access-Control-Request-Headers": "x y\t<z>"})
    assert response.status == 204
    assert response.header("Access-Control-Allow-Headers") is None


# --- an allow-list


@pytest.mark.parametrize("path", [SCRIPT, PLAIN])
@pytest.mark.parametrize("origin", [A, B])
def test_a_listed_origin_is_echoed_on_every_kind_of_answer(allow_list: ServerProcess, path: str,
                                                           origin: str) -> None:
    for extra in conditional_headers(allow_list, path):
        response = raw_request(allow_list, path, headers={**extra, "Origin": origin})
        assert response.status in {200, 304, 206, 416, 412}
        assert response.header("Access-Control-Allow-Origin") == origin, (extra, response.status)
        assert response.header("Timing-Allow-Origin") == origin, (extra, response.status)
        assert "Origin" in response.header("Vary").split(", "), (extra, response.status)


@pytest.mark.parametrize("origin", [None, "https://c.example", "https://a.example.evil.example",
                                    "http://a.example", "null", "*", f"{A}, {B}"])
@pytest.mark.parametrize("path", [SCRIPT, PLAIN])
def test_an_unlisted_origin_gets_no_allow_origin_but_vary(allow_list: ServerProcess,
                                                          origin: str | None, path: str) -> None:
    for extra in conditional_headers(allow_list, path):
        headers = {**extra, **({"Origin": origin} if origin else {})}
        response = raw_request(allow_list, path, headers=headers)
        assert response.header("Access-Control-Allow-Origin") is None
        assert response.header("Timing-Allow-Origin") is None
        assert "Origin" in response.header("Vary").split(", "), (extra, response.status)


def test_vary_lists_both_when_the_file_has_variants(allow_list: ServerProcess) -> None:
    assert raw_request(allow_list, SCRIPT, headers={"Origin": A}).header("Vary") == "Accept-Encoding, Origin"
    assert raw_request(allow_list, PLAIN, headers={"Origin": A}).header("Vary") == "Origin"


def test_preflight_with_an_allow_list(allow_list: ServerProcess) -> None:
    listed = raw_request(allow_list, SCRIPT, "OPTIONS", {"Origin": B, **PREFLIGHT})
    assert listed.status == 204
    assert listed.header("Access-Control-Allow-Origin") == B
    assert listed.header("Access-Control-Allow-Methods") == "GET, HEAD"
    assert "Origin" in listed.header("Vary")
    unlisted = raw_request(allow_list, SCRIPT, "OPTIONS", {"Origin": "https://c.example", **PREFLIGHT})
    assert unlisted.status == 204
    assert unlisted.header("Access-Control-Allow-Origin") is None
    assert "Origin" in unlisted.header("Vary")


# --- off


def test_cors_off_sends_no_cors_headers(cors_off: ServerProcess) -> None:
    for path in (SCRIPT, PLAIN):
        for extra in conditional_headers(cors_off, path):
            response = raw_request(cors_off, path, headers={**extra, "Origin": A})
            assert not [name for name, _ in response.headers if name.lower().startswith("access-control")]
            assert response.header("Timing-Allow-Origin") is None
            assert "Origin" not in (response.header("Vary") or "")


def test_cors_off_answers_a_preflight_with_405(cors_off: ServerProcess) -> None:
    response = raw_request(cors_off, SCRIPT, "OPTIONS", {"Origin": A, **PREFLIGHT})
    assert response.status == 405
    assert response.header("Allow") == "GET, HEAD"
    assert response.header("Access-Control-Allow-Origin") is None


# --- Timing-Allow-Origin on its own


@pytest.mark.parametrize(("cors", "timing", "expected"), [("off", "*", "*"), ("*", "off", None),
                                                          (f"{A},{B}", "*", "*")])
def test_timing_allow_origin_set_apart_from_cors(root: Path, cors: str, timing: str,
                                                 expected: str | None) -> None:
    """Resource Timing needs it for any cross-origin file, CORS or not (an <img>, a
    <link> without crossorigin): '*' sends it to everyone, off to no one."""
    with serving(root, {"SERVESTATIC_CORS": cors, "SERVESTATIC_TIMING_ALLOW_ORIGIN": timing}) as server:
        for path in (SCRIPT, PLAIN):
            for extra in conditional_headers(server, path):
                response = raw_request(server, path, headers={**extra, "Origin": A})
                assert response.header("Timing-Allow-Origin") == expected, (path, extra, response.status)

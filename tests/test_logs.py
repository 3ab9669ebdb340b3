"""servestatic's root log handler prints what no console handler of the app prints (config/logs.py)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from servestatic.config.logs import NotPrintedElsewhere


@pytest.fixture
def printed() -> Iterator[io.StringIO]:
    """A root handler like servestatic's, into a buffer; loggers made here are removed after."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(NotPrintedElsewhere())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        for name in ("app", "app.views"):
            logging.getLogger(name).handlers.clear()


def test_a_record_the_app_prints_is_not_printed_again(printed: io.StringIO) -> None:
    console = logging.StreamHandler()  # stderr, as Django's "console" handler
    logging.getLogger("app").addHandler(console)
    logging.getLogger("app.views").warning("Not Found: /x")
    assert printed.getvalue() == ""


def test_a_record_no_console_handler_prints_is_printed(printed: io.StringIO) -> None:
    console = logging.StreamHandler()
    console.addFilter(lambda record: False)  # Django's require_debug_true in production
    logging.getLogger("app").addHandler(console)
    logging.getLogger("app").addHandler(logging.NullHandler())
    logging.getLogger("app.views").warning("Internal Server Error: /x")
    assert printed.getvalue() == "Internal Server Error: /x\n"


def test_a_console_handler_above_the_level_does_not_count(printed: io.StringIO) -> None:
    console = logging.StreamHandler()
    console.setLevel(logging.ERROR)
    logging.getLogger("app").addHandler(console)
    logging.getLogger("app.views").warning("slow")
    assert printed.getvalue() == "slow\n"

"""Fuzz target: the Range parser (`parse_range`, servestatic/core/http.py).

The input is the representation's size in decimal, a newline, then the Range field as
the client sent it (bytes, read as latin-1 as WSGI and the fronts do); without a size
line the whole input is the field and the size 1000. Serving the whole representation
(None) is always allowed (RFC 9110 14.2), so the contract is about everything else:

- a range returned lies within the representation: 0 <= first <= last < size, and is
  exactly the one a single range-spec asks for (RFC 9110 14.1.2: an int-range clipped
  to the end, a suffix-range of the last N bytes), read by the lenient grammar the
  parser documents (`bytes`, any case; spaces or tabs around "=" and "-");
- Unsatisfiable only for a single range-spec that selects no byte;
- a plain `bytes=FIRST-LAST` (19 digits at most each, which is the parser's bound) is
  never ignored: its range, or Unsatisfiable, exactly.
"""

from __future__ import annotations

from servestatic.core.http import Unsatisfiable, parse_range

DEFAULT_SIZE = 1000
MAX_DIGITS = 19  # the parser reads at most 19 digits a number (anything longer is garbage)
UNSATISFIABLE = "unsatisfiable"
_OWS = " \t"


def split_input(data: bytes) -> tuple[str, int]:
    """(Range field, representation size) from one fuzz input."""
    first, newline, rest = data.partition(b"\n")
    if newline and 0 < len(first) <= MAX_DIGITS and first.isdigit():
        return rest.decode("latin-1"), int(first)
    return data.decode("latin-1"), DEFAULT_SIZE


def _number(text: str) -> int | None:
    """A run of ASCII digits as an int; None for anything else (or too long)."""
    if not text or len(text) > MAX_DIGITS or not all("0" <= char <= "9" for char in text):
        return None
    return int(text)


def expected(header: str, size: int) -> tuple[int, int] | str | None:
    """What RFC 9110 14.1.2 makes of one range-spec, written without the parser's regex:
    (first, last), UNSATISFIABLE, or None for a field that is not one range-spec."""
    if header[:5].lower() != "bytes":
        return None
    rest = header[5:].lstrip(_OWS)
    if not rest.startswith("="):
        return None
    first_text, dash, last_text = rest[1:].strip(_OWS).partition("-")
    if not dash:
        return None
    first_text, last_text = first_text.rstrip(_OWS), last_text.lstrip(_OWS)
    first, last = _number(first_text), _number(last_text)
    if (first_text and first is None) or (last_text and last is None) or (first is None and last is None):
        return None
    if first is None:  # suffix-range: the last `last` bytes
        assert last is not None
        if last == 0 or size == 0:
            return UNSATISFIABLE
        return max(0, size - last), size - 1
    if last is not None and last < first:
        return None  # invalid int-range: the field is ignored
    if first >= size:
        return UNSATISFIABLE
    return first, size - 1 if last is None else min(last, size - 1)


def check_range(header: str, size: int) -> None:
    try:
        result: tuple[int, int] | str | None = parse_range(header, size)
    except Unsatisfiable:
        result = UNSATISFIABLE
    if isinstance(result, tuple):
        first, last = result
        assert type(first) is int and type(last) is int, result
        assert 0 <= first <= last < size, (header, size, result)
    want = expected(header, size)
    if result is not None:
        assert result == want, (header, size, result, want)
    first, dash, last = header.removeprefix("bytes=").partition("-")
    plain = header.startswith("bytes=") and dash and _number(first or "0") is not None and (
        not last or _number(last) is not None) and (first or last)
    if plain:
        assert result == want, ("a plain range was ignored", header, size, want)


def TestOneInput(data: bytes) -> None:
    check_range(*split_input(data))

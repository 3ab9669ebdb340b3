"""Fuzz target: the Accept-Encoding parser (`acceptable_codings`, servestatic/core/http.py).

The input is the field as the client sent it (bytes, read as latin-1). Elements are
found as the parser finds them (split at ",", the coding before any ";", trimmed and
lower-cased, x-gzip being gzip); what each element means is then read from RFC 9110
12.5.3 and 12.4.2, independently of the parser:

- the result holds "identity", codings the field names, or codings servestatic makes
  variants in (what "*" stands for); never "*" itself;
- a coding named once with a valid qvalue (or none) is acceptable exactly when its
  weight is above 0; one whose q cannot be a number in [0, 1] is ignored;
- "*" named once with a valid qvalue decides the codings and identity not named;
- identity is acceptable unless refused by name, or by "*;q=0" without being named;
- no field at all means identity only.

A qvalue the RFC does not allow but float() reads (".5", "1e0", "0_1") is the parser's
leniency, not checked either way.
"""

from __future__ import annotations

import re
from collections import Counter

from servestatic.core.http import acceptable_codings
from servestatic.site.names import ENCODING_SUFFIXES

_QVALUE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")  # RFC 9110 12.4.2
_ALIASES = {"x-gzip": "gzip"}


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def elements(header: str) -> list[tuple[str, list[str]]]:
    """(coding, its q parameter values) for each element that names a coding."""
    found = []
    for element in header.split(","):
        coding, _, parameters = element.partition(";")
        coding = coding.strip().lower()
        if not coding:
            continue
        qualities = []
        for parameter in parameters.split(";"):
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                qualities.append(value.strip())
        found.append((_ALIASES.get(coding, coding), qualities))
    return found


def check_codings(header: str | None) -> None:
    result = acceptable_codings(header)
    assert isinstance(result, frozenset), result
    if header is None:
        assert result == {"identity"}, result
        return
    named = elements(header)
    counts = Counter(coding for coding, _ in named)
    assert "*" not in result, result
    assert result <= set(counts) | set(ENCODING_SUFFIXES) | {"identity"}, (header, result)

    weight: dict[str, float] = {}  # codings named once, with a valid qvalue or none
    ignored: set[str] = set()  # codings named once whose q is no number in [0, 1]
    for coding, qualities in named:
        if counts[coding] != 1 or len(qualities) > 1:
            continue
        if not qualities:
            weight[coding] = 1.0
        elif _QVALUE.fullmatch(qualities[0]):
            weight[coding] = float(qualities[0])
        else:
            number = _float(qualities[0])
            if number is None or not 0.0 <= number <= 1.0:
                ignored.add(coding)
    for coding, value in weight.items():
        if coding != "*":
            assert (coding in result) == (value > 0), (header, coding, value, result)
    # A coding not named, or named only in an ignored element, is left to "*", if any.
    unnamed = [coding for coding in [*ENCODING_SUFFIXES, "identity"]
               if coding not in counts or coding in ignored]
    if "*" not in counts:
        assert not (ignored - {"identity"}) & result, (header, ignored, result)
        if "identity" in unnamed:
            assert "identity" in result, (header, result)
    elif "*" in weight:
        for coding in unnamed:
            assert (coding in result) == (weight["*"] > 0), (header, coding, result)


def TestOneInput(data: bytes) -> None:
    check_codings(data.decode("latin-1"))
    if not data:
        check_codings(None)

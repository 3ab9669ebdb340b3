"""Per-glob response header rules, read from a TOML file (SERVESTATIC_HEADERS_FILE).

    [[rule]]
    glob = "*.html"                      # fnmatch on the path below the root; * crosses /
    headers = { Content-Security-Policy = "default-src 'self'" }

    [[rule]]
    glob = "embed/*"
    headers = { X-Frame-Options = "" }   # an empty value removes the header

Rules apply in file order; a later rule's header replaces an earlier one, and
any rule may replace a header servestatic sets itself (Cache-Control, say),
except those that describe the bytes (Content-Length, Content-Encoding, ETag...).
An `[https]` table sets what depends on the request's scheme (core/security.py):

    [https]
    hsts = "max-age=31536000; includeSubDomains"   # Strict-Transport-Security, on https only
    redirect = true                                # plain http -> 301 to https
    host = "www.example.com"                       # where the redirect goes (default: Host)

With a Django project these replace the value its settings give (SECURE_HSTS_*,
SECURE_SSL_REDIRECT, SECURE_SSL_HOST); `hsts = ""` turns HSTS off.

TOML rather than a bespoke `_headers` syntax: the standard library reads it, and
it is the format Python users already write.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Headers whose value follows from the file and the request, never from a rule.
PROTECTED = frozenset({
    "content-length", "content-encoding", "content-range", "etag", "last-modified",
    "vary", "accept-ranges", "transfer-encoding", "connection", "date", "server", "repr-digest",
})


class HeaderRulesError(ValueError):
    """The rules file is unreadable or malformed; the message is one line."""


@dataclass(frozen=True)
class HeaderRule:
    glob: str
    headers: tuple[tuple[str, str], ...]

    def matches(self, relative_path: str) -> bool:
        return fnmatch.fnmatchcase(relative_path, self.glob)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise HeaderRulesError(f"cannot read {path}: {error.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise HeaderRulesError(f"{path} is not valid TOML: {error}") from None
    unknown = set(data) - {"rule", "https"}
    if unknown:
        raise HeaderRulesError(f"{path}: unknown top-level key(s) {sorted(unknown)}; "
                               "expected [[rule]] and [https]")
    return data


_HSTS = re.compile(r"max-age=\d+(\s*;\s*(includeSubDomains|preload))*", re.IGNORECASE)
_HOST = re.compile(r"([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*|\[[0-9a-fA-F:]+\])(:\d{1,5})?")
# Each [https] key: (what it accepts, its check).
_HTTPS_KEYS: dict[str, tuple[str, Any]] = {
    "hsts": ("'' or max-age=SECONDS with optional '; includeSubDomains' and '; preload'",
             lambda value: isinstance(value, str) and (value == "" or _HSTS.fullmatch(value))),
    "redirect": ("true or false", lambda value: isinstance(value, bool)),
    "host": ("a host name, optionally with :PORT",
             lambda value: isinstance(value, str) and _HOST.fullmatch(value)),
}


def load_https(path: Path) -> dict[str, Any]:
    """The file's [https] table, checked: the keys it has among hsts, redirect and host."""
    table = _read(path).get("https", {})
    if not isinstance(table, dict):
        raise HeaderRulesError(f"{path}: https must be a table, [https]")
    for key, value in table.items():
        if key not in _HTTPS_KEYS:
            raise HeaderRulesError(f"{path}: [https] has no key {key!r}; expected hsts, redirect or host")
        expected, valid = _HTTPS_KEYS[key]
        if not valid(value):
            raise HeaderRulesError(f"{path}: [https] {key} = {value!r}; expected {expected}")
    return table


def load_rules(path: Path) -> tuple[HeaderRule, ...]:
    data = _read(path)
    rules = []
    for number, rule in enumerate(data.get("rule", []), start=1):
        where = f"{path}: rule {number}"
        if not isinstance(rule, dict) or set(rule) != {"glob", "headers"}:
            raise HeaderRulesError(f"{where}: needs exactly the keys 'glob' and 'headers'")
        glob, headers = rule["glob"], rule["headers"]
        if not isinstance(glob, str) or not glob or not isinstance(headers, dict):
            raise HeaderRulesError(f"{where}: 'glob' must be text and 'headers' a table")
        pairs = []
        for name, value in headers.items():
            if not _TOKEN.fullmatch(name) or name.lower() in PROTECTED:
                raise HeaderRulesError(f"{where}: {name!r} is not a header a rule may set")
            if not isinstance(value, str) or any(c in value for c in "\r\n\x00"):
                raise HeaderRulesError(f"{where}: the value of {name} must be one line of text")
            pairs.append((name, value))
        rules.append(HeaderRule(glob.lstrip("/"), tuple(pairs)))
    return tuple(rules)


def headers_for(rules: tuple[HeaderRule, ...], relative_path: str) -> dict[str, tuple[str, str]]:
    """Rule headers for one file, keyed by lower-case name; value "" means remove."""
    result: dict[str, tuple[str, str]] = {}
    for rule in rules:
        if rule.matches(relative_path):
            for name, value in rule.headers:
                result[name.lower()] = (name, value)
    return result

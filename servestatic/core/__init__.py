"""The core tier: the HTTP decision, with no server in it.

Who answers a request and what servestatic answers (decision), an answer as
data and the parts of sending it every transport shares (answer), the
lookup table with every header decided once (table), the header parsers of
RFC 9110 (http), opening a file safely (safeopen), CORS (cors) and
per-glob header rules (headerrules). It imports the site and config tiers
only: no asyncio, no gunicorn, no ASGI or WSGI server, so every rule of the
HTTP contract can be read, and tested, without one.
"""

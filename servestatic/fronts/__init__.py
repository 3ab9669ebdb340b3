"""The fronts tier: the decision and the user's app behind the two Python web interfaces.

The ASGI front (asgifront), the WSGI front (wsgifront), a WSGI app run from
an event loop in a thread pool (wsgibridge), building a WSGI environ from
whatever a front has in hand (environ), importing the user's app and telling
WSGI from ASGI (userapp), and making all of it ready before serving
(prepare). It imports the core, site and config tiers; it runs under any
ASGI or WSGI server, so it imports neither gunicorn nor a server of its own.
"""

"""The server tier: gunicorn, and the event-loop worker that answers static hits itself.

The worker (worker), the loop's request-head reader (requesthead), the access
log (accesslog), Prometheus metrics (metrics), gunicorn's configuration from
the settings and gunicorn's own layers (gunicornconfig), and gunicorn run as
a library (gunicornapp). The only tier that imports gunicorn; it imports the
fronts, core, site and config tiers.
"""

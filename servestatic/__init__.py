"""servestatic: a Python web app's static files, served correctly and fast as a CDN origin."""

__version__ = "0.1.0"

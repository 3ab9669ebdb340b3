"""Tiny WSGI apps that chaining tests name in SERVESTATIC_APP."""

"""The buildtime tier: what runs once, at build time, never while serving.

Compression of a tree into its variants and manifest (compress), the
encoders and their parameters (encoders), and the list of URLs a deploy
changed (diff). It imports the site and config tiers, and no serving tier
imports it: a server never compresses.
"""

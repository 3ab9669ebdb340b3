"""The config tier: what the operator said, declared once.

Every SERVESTATIC_* setting, its environment variable, command-line flag,
default, parser and help, in one table (settings), and the CPU count that
the worker and compression defaults follow (cpus). It imports only the site
tier (for the manifest's name), so every other tier can read Settings.
"""

"""A module that fails on import, for the start-up error test."""

raise RuntimeError("this app is broken on purpose")

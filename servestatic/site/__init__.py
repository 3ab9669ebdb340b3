"""The site tier: the on-disk contract of a static root.

What `servestatic compress` writes and `servestatic serve` reads, and nothing
that runs per request: the manifest and how it is read and written
(manifest), which files of a tree exist for the web (scan), the names both
sides agree on (names: the manifest's, the variants' suffixes, the index and
404 pages), which names carry a content hash (hashednames), media types
(mediatypes) and atomic writes (atomic). It imports nothing else of
servestatic, so a tool that only reads a compressed tree needs only this.
"""

"""Media types: the standard library's `mimetypes`, extended by a current table.

We build a private `MimeTypes` that reads no system files (`/etc/mime.types`
differs between machines and would make a manifest depend on where it was
built) and add the types browsers expect today.
"""

from __future__ import annotations

import mimetypes

# Types that the standard library lacks, has wrong for the web, or has changed
# between Python versions. RFC 9239 makes text/javascript the one JS type.
CURRENT_TYPES: dict[str, str] = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".cjs": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".htm": "text/html",
    ".json": "application/json",
    ".map": "application/json",
    ".jsonld": "application/ld+json",
    ".webmanifest": "application/manifest+json",
    ".wasm": "application/wasm",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".eot": "application/vnd.ms-fontobject",
    ".svg": "image/svg+xml",
    ".avif": "image/avif",
    ".webp": "image/webp",
    ".jxl": "image/jxl",
    ".heic": "image/heic",
    ".ico": "image/vnd.microsoft.icon",
    ".png": "image/png",
    ".apng": "image/apng",
    ".gif": "image/gif",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".csv": "text/csv",
    ".xml": "application/xml",
    ".rss": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".ics": "text/calendar",
    ".vtt": "text/vtt",
    ".pdf": "application/pdf",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".ogv": "video/ogg",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/ogg",
    ".flac": "audio/flac",
    ".wav": "audio/wav",
    ".m4a": "audio/mp4",
    ".aac": "audio/aac",
    ".gltf": "model/gltf+json",
    ".glb": "model/gltf-binary",
    ".zip": "application/zip",
    ".gz": "application/gzip",
    ".tgz": "application/gzip",
    ".br": "application/x-brotli",
    ".zst": "application/zstd",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".toml": "application/toml",
    ".txtpb": "text/plain",
}

# Non-text types that are still text and want a charset.
TEXTUAL_APPLICATION_TYPES = frozenset({
    "application/json",
    "application/ld+json",
    "application/manifest+json",
    "application/xml",
    "application/rss+xml",
    "application/atom+xml",
    "application/yaml",
    "application/toml",
    "image/svg+xml",
    "model/gltf+json",
})

FALLBACK_TYPE = "application/octet-stream"

_TYPES = mimetypes.MimeTypes(filenames=())
for _extension, _type in CURRENT_TYPES.items():
    _TYPES.add_type(_type, _extension)


def content_type_for(name: str) -> str:
    """The Content-Type header value for a file name, with charset=utf-8 on text."""
    lowered = name.lower()
    media_type, encoding = _TYPES.guess_type(lowered, strict=False)
    if encoding is not None:
        # A file such as data.tar.gz is served as what it is on disk, a gzip file,
        # not as a tar with a Content-Encoding.
        media_type = CURRENT_TYPES.get("." + lowered.rsplit(".", 1)[-1])
    if media_type is None:
        return FALLBACK_TYPE
    if media_type.startswith("text/") or media_type in TEXTUAL_APPLICATION_TYPES:
        return media_type + "; charset=utf-8"
    return media_type

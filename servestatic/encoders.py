"""The compressors, each configured once: brotli 11, gzip through zopfli, zstd.

`ENCODER_PARAMETERS` describes how each encoding's bytes are produced; it keys
both the incremental check (a manifest made with other parameters is not
trusted) and the cache directory (outputs made with other parameters are not
reused).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from hashlib import sha256
from typing import Any

import brotli
import zopfli.gzip

BROTLI_QUALITY = 11
ZSTD_LEVEL = 19

# zopfli's cost is mostly block splitting and iterations. These points were
# chosen by measurement on a 21 MB front-end corpus (bench/compress_bench.py):
# "balanced" beats gzip -9 by the margin the project promises at a fraction of
# zopfli's default cost; "max" is zopfli's own default.
GZIP_EFFORTS: dict[str, dict[str, Any]] = {
    "fast": {"numiterations": 1, "blocksplitting": False},
    "balanced": {"numiterations": 5, "blocksplitting": True, "blocksplittingmax": 15},
    "max": {"numiterations": 15, "blocksplitting": True, "blocksplittingmax": 15},
}


def _zstd_compressor() -> Callable[[bytes], bytes]:
    """The standard library's compression.zstd where present (3.14+), else zstandard."""
    try:
        from compression import zstd  # type: ignore[import-not-found]

        return lambda data: zstd.compress(data, level=ZSTD_LEVEL)
    except ImportError:
        pass
    try:
        import zstandard
    except ImportError:
        raise RuntimeError(
            "zstd needs Python 3.14+ or the zstandard package: "
            "pip install 'servestatic-origin[zstd]'"
        ) from None
    compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    return compressor.compress


def encoder_parameters(gzip_effort: str) -> dict[str, dict[str, Any]]:
    return {
        "br": {"brotli_quality": BROTLI_QUALITY},
        "gzip": {"zopfli": GZIP_EFFORTS[gzip_effort]},
        "zstd": {"zstd_level": ZSTD_LEVEL},
    }


def parameters_key(parameters: dict[str, Any]) -> str:
    """A short stable digest of one encoding's parameters, for cache paths."""
    return sha256(json.dumps(parameters, sort_keys=True).encode()).hexdigest()[:12]


def make_encoders(encodings: tuple[str, ...], gzip_effort: str) -> dict[str, Callable[[bytes], bytes]]:
    encoders: dict[str, Callable[[bytes], bytes]] = {}
    for encoding in encodings:
        if encoding == "br":
            encoders["br"] = lambda data: brotli.compress(data, quality=BROTLI_QUALITY)
        elif encoding == "gzip":
            options = GZIP_EFFORTS[gzip_effort]
            encoders["gzip"] = lambda data, options=options: zopfli.gzip.compress(data, **options)
        elif encoding == "zstd":
            encoders["zstd"] = _zstd_compressor()
    return encoders

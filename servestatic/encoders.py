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

# zopfli's cost is mostly its optimal parse (even one iteration) and block
# splitting. Measured with bench/gzip_tune.py and bench/compress_bench.py on a
# 24 MB, 3,449-file npm corpus (bootstrap, bootstrap-icons, react-dom, d3,
# lodash, font-awesome), CPU seconds, on the 129 files of 8 KB and more that
# hold 21.6 MB of it (brotli 11 on them: 27.8 s; gzip -9: 1.3 s):
#
#   iterations  splitting       x gzip -9  CPU s
#   1           off              0.9638    15.2
#   5           off              0.9595    23.8
#   1           max 2 blocks     0.9575    17.4   <- balanced
#   1           max 3 blocks     0.9553    19.7
#   3           max 3 blocks     0.9515    24.0
#   1           max 15 blocks    0.9495    39.6
#
# ("max", zopfli's default, is several times slower again.)
# Whole corpus, like for like against WhiteNoise (gzip -9): balanced writes
# 0.963 x its gzip bytes at 1.55 x its CPU time (brotli 11 is ~60% of ours).
# `split_min_size` is ours, not zopfli's: splitting costs ~35 ms on any file
# however small (against 0.5 ms without) and gains almost nothing below a
# few KB, so smaller files are compressed without it.
GZIP_EFFORTS: dict[str, dict[str, Any]] = {
    "fast": {"numiterations": 1, "blocksplitting": False},
    "balanced": {"numiterations": 1, "blocksplitting": True, "blocksplittingmax": 2,
                 "split_min_size": 16384},
    "max": {"numiterations": 15, "blocksplitting": True, "blocksplittingmax": 15},
}


def _zopfli_gzip(effort: str) -> Callable[[bytes], bytes]:
    options = dict(GZIP_EFFORTS[effort])
    split_min_size = options.pop("split_min_size", 0)
    unsplit = {**options, "blocksplitting": False}

    def compress(data: bytes) -> bytes:
        return zopfli.gzip.compress(data, **(options if len(data) >= split_min_size else unsplit))

    return compress


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
            encoders["gzip"] = _zopfli_gzip(gzip_effort)
        elif encoding == "zstd":
            encoders["zstd"] = _zstd_compressor()
    return encoders

"""The compressors, each configured once: brotli 11, gzip through libdeflate (or zopfli), zstd.

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
import deflate
import zopfli.gzip

BROTLI_QUALITY = 11
ZSTD_LEVEL = 19

# gzip by measurement (bench/gzip_tune.py, bench/compress_bench.py) on the
# benchmark's npm corpus, 2,929 compressible files, 20.7 MB, CPU seconds:
#
#   encoder                              x gzip -9   CPU s
#   zlib level 9 (gzip -9, WhiteNoise)    1.000       ~1.3
#   zopfli, 1 iteration, at most 2 blocks 0.960      19.9   (our earlier default)
#   libdeflate level 12                   0.956       4.7   <- balanced
#
# libdeflate's level 12 (near-optimal parsing of its own) writes fewer bytes
# than one-iteration zopfli in a quarter of the time; brotli 11 is then about
# 85% of a run's CPU, as it is of WhiteNoise's. zopfli stays for `max`, where
# its many iterations are worth their time to someone.
GZIP_EFFORTS: dict[str, dict[str, Any]] = {
    "fast": {"libdeflate": 9},
    "balanced": {"libdeflate": 12},
    "max": {"zopfli": {"numiterations": 15, "blocksplitting": True, "blocksplittingmax": 15}},
}


def _gzip(effort: str) -> Callable[[bytes], bytes]:
    """gzip members with a fixed header (mtime 0), so a build is reproducible."""
    options = GZIP_EFFORTS[effort]
    if "zopfli" in options:
        zopfli_options = options["zopfli"]
        return lambda data: zopfli.gzip.compress(data, **zopfli_options)
    level = options["libdeflate"]
    return lambda data: deflate.gzip_compress(data, level)


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
        "gzip": GZIP_EFFORTS[gzip_effort],
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
            encoders["gzip"] = _gzip(gzip_effort)
        elif encoding == "zstd":
            encoders["zstd"] = _zstd_compressor()
    return encoders

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
from types import ModuleType
from typing import Any

import brotli
import deflate
import zopfli.gzip

BROTLI_QUALITY = 11
ZSTD_LEVEL = 19

# gzip by measurement on the benchmark's npm corpus (bench/gzip_tune.py: its
# 3,445 files with a compressible extension, 23.9 MB, CPU seconds):
#
#   encoder                                 x gzip -9   CPU s
#   zlib level 9 (gzip -9, as WhiteNoise)    1.0000      1.5
#   libdeflate level 9 (fast)                0.9913      0.8
#   libdeflate level 12 (balanced)           0.9593      5.2
#   zopfli, 1 iteration, split in 2 blocks   0.9633     67.8   (~20 s with splitting
#                                                               only above 16 KB, our earlier default)
#
# libdeflate's level 12 (its own near-optimal parse) writes fewer bytes than
# one-iteration zopfli in a fraction of the time; whole runs of
# bench/compress_bench.py: 0.959 x WhiteNoise's gzip bytes like for like (zopfli:
# 0.963), and 1.15 x its CPU for brotli and gzip together (zopfli: 1.42 x), brotli
# 11 being most of both. zopfli stays for `max`, for whoever finds its many
# iterations worth their time.
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


def zstd_module() -> ModuleType | None:
    """The standard library's compression.zstd (3.14+), else its backport `backports.zstd`
    (what the `zstd` extra installs: 1.4 MB, where zstandard takes 23 MB, so the image can
    carry it), or None. One API on every Python, so one code path makes .zst variants and
    `dcz` deltas wherever servestatic runs."""
    try:
        from compression import zstd  # type: ignore[import-not-found]

        return zstd
    except ImportError:
        pass
    try:
        from backports import zstd  # type: ignore[import-not-found,no-redef]

        return zstd
    except ImportError:
        return None


def _zstd_compressor() -> Callable[[bytes], bytes]:
    """compression.zstd or its backport (zstd_module), else the zstandard package."""
    zstd = zstd_module()
    if zstd is not None:
        return lambda data: zstd.compress(data, level=ZSTD_LEVEL)
    try:
        import zstandard
    except ImportError:
        raise RuntimeError(
            "zstd needs Python 3.14+ or the backports.zstd package: "
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

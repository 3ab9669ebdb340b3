"""`servestatic compress` on real files: the rules of issue 2, one test each.

CLI behaviour (exit codes, one-line errors, settings from flags and the
environment) is driven through the real command in a subprocess; the finer
rules call `compress_tree` directly where that reads more clearly.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import random
import resource
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import brotli
import pytest

from servestatic.buildtime.compress import PROBE_MIN_SIZE, CompressOptions, compress_tree
from servestatic.config.settings import load_settings
from servestatic.site.names import MANIFEST_NAME
from tests.support import needs
from tests.support.cli import run_compress

WORDS = [
    "static", "origin", "cache", "brotli", "gzip", "zopfli", "manifest", "header", "variant",
    "request", "response", "server", "browser", "script", "style", "font", "image", "immutable",
    "content", "hash", "build", "deploy", "worker", "thread",
]


def text(size: int, seed: int = 0) -> bytes:
    """Compressible text of exactly `size` bytes, different for each seed."""
    rng = random.Random(seed)
    words: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(WORDS) + str(rng.randrange(100))
        words.append(word)
        length += len(word) + 1
    return " ".join(words).encode()[:size]


def noise(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def compress_json(root: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = run_compress(os.fspath(root), "--json", *args, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def manifest(root: Path) -> dict[str, Any]:
    return json.loads((root / MANIFEST_NAME).read_bytes())


def compressed(summary: dict[str, Any], encoding: str) -> int:
    return summary["encodings"][encoding]["compressed"]


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def expected_hash(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()[:16]).decode().rstrip("=")


def expected_digests(data: bytes) -> dict[str, str]:
    """The manifest's Repr-Digest values (RFC 9530) for bytes, computed here independently."""
    return {"sha-256": base64.b64encode(hashlib.sha256(data).digest()).decode(),
            "sha-512": base64.b64encode(hashlib.sha512(data).digest()).decode()}


def settings_for(root: Path, **overrides: str) -> Any:
    return load_settings(environ={}, overrides={"root": os.fspath(root), **overrides})


# --- what gets a variant -------------------------------------------------------------


def test_variants_decode_to_the_original(tmp_path: Path) -> None:
    original = write(tmp_path / "app.js", text(5000))
    compress_json(tmp_path)
    assert brotli.decompress((tmp_path / "app.js.br").read_bytes()) == original.read_bytes()
    assert gzip.decompress((tmp_path / "app.js.gz").read_bytes()) == original.read_bytes()
    assert not (tmp_path / "app.js.zst").exists()


def test_variant_kept_only_at_95_percent_or_less(tmp_path: Path) -> None:
    # Random bytes do not compress; a tail of zeros does. The share of zeros
    # sets the ratio: about 0.97 for one file, about 0.90 for the other.
    barely = write(tmp_path / "barely.txt", noise(9700) + bytes(300))
    enough = write(tmp_path / "enough.txt", noise(9000) + bytes(1000))
    # The premise: brotli on its own lands on either side of the line.
    assert len(brotli.compress(barely.read_bytes(), quality=11)) > 0.95 * 10000
    assert len(brotli.compress(enough.read_bytes(), quality=11)) <= 0.95 * 10000

    compress_json(tmp_path)
    files = manifest(tmp_path)["files"]
    assert not (tmp_path / "barely.txt.br").exists()
    assert not (tmp_path / "barely.txt.gz").exists()
    assert files["barely.txt"]["variants"] == {}
    assert (tmp_path / "enough.txt.br").exists()
    assert set(files["enough.txt"]["variants"]) >= {"br"}
    for encoding, variant in files["enough.txt"]["variants"].items():
        assert variant["size"] <= 0.95 * 10000, encoding


def test_already_compressed_types_are_skipped(tmp_path: Path) -> None:
    # Compressible bytes, but a .png or .woff2 is compressed by its format.
    write(tmp_path / "img" / "pic.png", text(4000))
    write(tmp_path / "fonts" / "inter.woff2", text(4000, seed=1))
    write(tmp_path / "style.css", text(4000, seed=2))
    compress_json(tmp_path)
    assert not list((tmp_path / "img").glob("pic.png.*"))
    assert not list((tmp_path / "fonts").glob("inter.woff2.*"))
    assert (tmp_path / "style.css.br").exists()
    assert (tmp_path / "style.css.gz").exists()


def test_an_ico_is_compressed(tmp_path: Path) -> None:
    # An .ico often holds uncompressed bitmaps (Wagtail's admin favicon: 15,406 bytes,
    # 2,408 as br); only formats compressed by design are on the default skip list.
    header = bytes([0, 0, 1, 0, 1, 0, 16, 16, 0, 0, 1, 0, 32, 0]) + (1064).to_bytes(4, "little") + \
        (22).to_bytes(4, "little")
    pixels = bytes([40, 0, 0, 0, 16, 0, 0, 0, 32, 0, 0, 0, 1, 0, 32, 0]) + bytes(24) + \
        bytes([255, 128, 0, 255]) * 256 + bytes(64)
    write(tmp_path / "favicon.ico", header + pixels)
    compress_json(tmp_path)
    variants = manifest(tmp_path)["files"]["favicon.ico"]["variants"]
    assert set(variants) >= {"br", "gzip"}
    assert variants["br"]["size"] < 0.2 * (tmp_path / "favicon.ico").stat().st_size


@pytest.mark.parametrize("how", ["flag", "env"])
def test_skip_list_is_a_setting(tmp_path: Path, how: str) -> None:
    write(tmp_path / "pic.png", text(4000))
    write(tmp_path / "style.css", text(4000, seed=2))
    if how == "flag":
        compress_json(tmp_path, "--skip-extensions", "css,.TXT")
    else:
        compress_json(tmp_path, env={"SERVESTATIC_SKIP_EXTENSIONS": "css,.TXT"})
    assert not (tmp_path / "style.css.br").exists()
    assert (tmp_path / "pic.png.br").exists()  # no longer on the (replaced) list


def test_files_below_min_size_are_not_compressed(tmp_path: Path) -> None:
    write(tmp_path / "small.css", b"a{color:red}" * 21)  # 252 bytes, below the 256 default
    write(tmp_path / "enough.css", b"a{color:red}" * 22)  # 264 bytes
    compress_json(tmp_path)
    assert not (tmp_path / "small.css.br").exists()
    assert (tmp_path / "enough.css.br").exists()
    assert manifest(tmp_path)["files"]["small.css"]["tried"] == []


@pytest.mark.parametrize("how", ["flag", "env"])
def test_min_size_is_a_setting(tmp_path: Path, how: str) -> None:
    write(tmp_path / "a.css", text(1000))
    write(tmp_path / "b.css", text(3000))
    if how == "flag":
        compress_json(tmp_path, "--min-size", "2000")
    else:
        compress_json(tmp_path, env={"SERVESTATIC_MIN_SIZE": "2000"})
    assert not (tmp_path / "a.css.br").exists()
    assert (tmp_path / "b.css.br").exists()


@pytest.mark.parametrize(
    ("args", "env", "variable"),
    [
        (["--min-size", "-1"], {}, "--min-size"),
        ([], {"SERVESTATIC_MIN_SIZE": "lots"}, "SERVESTATIC_MIN_SIZE"),
        (["--skip-extensions", "jpg,../x"], {}, "--skip-extensions"),
        ([], {"SERVESTATIC_GZIP_EFFORT": "extreme"}, "SERVESTATIC_GZIP_EFFORT"),
        (["--workers", "two"], {}, "--workers"),
    ],
)
def test_bad_setting_is_one_line_and_exit_2(tmp_path: Path, args: list[str], env: dict[str, str],
                                             variable: str) -> None:
    write(tmp_path / "a.css", text(1000))
    result = run_compress(os.fspath(tmp_path), *args, env=env)
    assert result.returncode == 2
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"servestatic: error: {variable}: got ")
    assert not (tmp_path / MANIFEST_NAME).exists()


def test_zstd_variants(tmp_path: Path) -> None:
    try:
        import zstandard
    except ImportError:
        zstandard = None
    needs(zstandard is not None, "zstandard is not installed (pip install -e .[test])")
    original = write(tmp_path / "app.js", text(5000)).read_bytes()
    write(tmp_path / "random.bin", noise(5000))
    summary = compress_json(tmp_path, "--zstd")
    assert compressed(summary, "zstd") == 2
    zst = (tmp_path / "app.js.zst").read_bytes()
    assert zstandard.ZstdDecompressor().decompress(zst) == original
    assert not (tmp_path / "random.bin.zst").exists()
    variants = manifest(tmp_path)["files"]["app.js"]["variants"]
    assert variants["zstd"]["size"] == len(zst)
    assert variants["zstd"]["hash"] == expected_hash(zst)

    # Without --zstd, the .zst written before is removed and no longer listed;
    # brotli and gzip are kept as they are.
    summary = compress_json(tmp_path)
    assert "zstd" not in summary["encodings"]
    assert not (tmp_path / "app.js.zst").exists()
    assert set(manifest(tmp_path)["files"]["app.js"]["variants"]) == {"br", "gzip"}
    assert compressed(summary, "br") == 0
    assert compressed(summary, "gzip") == 0


# --- incremental ---------------------------------------------------------------------------


def make_tree(root: Path) -> None:
    for index in range(6):
        write(root / "js" / f"module{index}.js", text(3000 + 100 * index, seed=index))
    write(root / "index.html", text(2000, seed=10))
    write(root / "img" / "pic.png", noise(2000))


def test_second_run_recompresses_nothing(tmp_path: Path) -> None:
    make_tree(tmp_path)
    first = compress_json(tmp_path)
    assert compressed(first, "br") == 7
    assert compressed(first, "gzip") == 7
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}

    second = compress_json(tmp_path)
    for encoding in ("br", "gzip"):
        assert compressed(second, encoding) == 0
        assert second["encodings"][encoding]["reused"] == 7
        assert second["encodings"][encoding]["variant_bytes"] == first["encodings"][encoding]["variant_bytes"]
    after = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    assert after == before


def test_changed_file_gets_new_variants(tmp_path: Path) -> None:
    make_tree(tmp_path)
    compress_json(tmp_path)
    changed = write(tmp_path / "js" / "module2.js", text(4000, seed=99)).read_bytes()
    summary = compress_json(tmp_path)
    assert compressed(summary, "br") == 1
    assert compressed(summary, "gzip") == 1
    assert brotli.decompress((tmp_path / "js" / "module2.js.br").read_bytes()) == changed
    assert gzip.decompress((tmp_path / "js" / "module2.js.gz").read_bytes()) == changed
    entry = manifest(tmp_path)["files"]["js/module2.js"]
    assert entry["hash"] == expected_hash(changed)
    assert entry["size"] == len(changed)


def test_damaged_variant_is_rewritten(tmp_path: Path) -> None:
    make_tree(tmp_path)
    compress_json(tmp_path)
    (tmp_path / "index.html.gz").write_bytes(b"truncated")
    (tmp_path / "js" / "module0.js.br").unlink()
    summary = compress_json(tmp_path)
    assert compressed(summary, "gzip") == 1
    assert compressed(summary, "br") == 1
    index = (tmp_path / "index.html").read_bytes()
    assert gzip.decompress((tmp_path / "index.html.gz").read_bytes()) == index
    assert (tmp_path / "js" / "module0.js.br").exists()


def test_deleted_file_loses_its_variants(tmp_path: Path) -> None:
    make_tree(tmp_path)
    compress_json(tmp_path)
    (tmp_path / "js" / "module3.js").unlink()
    summary = compress_json(tmp_path)
    assert summary["removed_variants"] == 2
    assert not (tmp_path / "js" / "module3.js.br").exists()
    assert not (tmp_path / "js" / "module3.js.gz").exists()
    assert "js/module3.js" not in manifest(tmp_path)["files"]
    assert compressed(summary, "br") == 0


def test_file_changed_to_incompressible_loses_stale_variants(tmp_path: Path) -> None:
    make_tree(tmp_path)
    compress_json(tmp_path)
    write(tmp_path / "js" / "module1.js", noise(3000))
    compress_json(tmp_path)
    assert not (tmp_path / "js" / "module1.js.br").exists()
    assert not (tmp_path / "js" / "module1.js.gz").exists()
    assert manifest(tmp_path)["files"]["js/module1.js"]["variants"] == {}


def test_file_shrunk_below_min_size_loses_stale_variants(tmp_path: Path) -> None:
    make_tree(tmp_path)
    compress_json(tmp_path)
    write(tmp_path / "js" / "module1.js", b"x" * 100)
    compress_json(tmp_path)
    assert not list((tmp_path / "js").glob("module1.js.*"))
    assert manifest(tmp_path)["files"]["js/module1.js"]["variants"] == {}


def test_gzip_efforts_write_valid_gzip_and_max_is_smallest(tmp_path: Path) -> None:
    """fast and balanced are libdeflate's levels 9 and 12, max is zopfli: each a valid
    gzip member, no larger than the effort below it."""
    sizes = {}
    for effort in ("fast", "balanced", "max"):
        root = tmp_path / effort
        original = write(root / "app.js", text(20_000, seed=3)).read_bytes()
        compress_json(root, "--gzip-effort", effort)
        packed = (root / "app.js.gz").read_bytes()
        assert gzip.decompress(packed) == original
        assert packed[4:8] == bytes(4)  # no mtime in the header: reproducible builds
        sizes[effort] = len(packed)
    assert manifest(tmp_path / "max")["compression"]["gzip"]["zopfli"]["numiterations"] == 15
    assert sizes["max"] <= sizes["balanced"] <= sizes["fast"]


def test_changing_gzip_effort_recompresses_gzip_only(tmp_path: Path) -> None:
    make_tree(tmp_path)
    compress_json(tmp_path)
    summary = compress_json(tmp_path, env={"SERVESTATIC_GZIP_EFFORT": "fast"})
    assert compressed(summary, "gzip") == 7
    assert compressed(summary, "br") == 0
    assert manifest(tmp_path)["compression"]["gzip"] == {"libdeflate": 9}
    for path in tmp_path.rglob("*.gz"):
        assert gzip.decompress(path.read_bytes()) == path.with_suffix("").read_bytes()
    again = compress_json(tmp_path, env={"SERVESTATIC_GZIP_EFFORT": "fast"})
    assert compressed(again, "gzip") == 0


# --- failures: one line, non-zero, nothing lost -----------------------------------------


def test_missing_root_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = run_compress(os.fspath(tmp_path / "nope"))
    assert result.returncode == 2
    assert error_lines(result) == [f"servestatic: error: {tmp_path / 'nope'}: no such directory"]
    assert result.stdout == ""


def test_root_that_is_a_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    write(tmp_path / "file.txt", b"x")
    result = run_compress(os.fspath(tmp_path / "file.txt"))
    assert result.returncode == 2
    assert len(error_lines(result)) == 1


def _without_file_permission_override() -> None:
    """Run as root without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH, so chmod 000 binds.

    Dropping them from the bounding set takes effect at exec: root's new
    permitted set is the bounding set.
    """
    if os.geteuid() != 0:
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop, cap_dac_override, cap_dac_read_search = 24, 1, 2
    for capability in (cap_dac_override, cap_dac_read_search):
        if libc.prctl(pr_capbset_drop, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_unreadable_file_is_one_line_and_exit_1(tmp_path: Path) -> None:
    make_tree(tmp_path)
    secret = write(tmp_path / "js" / "secret.js", text(3000, seed=5))
    secret.chmod(0)
    try:
        try:
            probe = subprocess.run([sys.executable, "-c", f"open({os.fspath(secret)!r}).read()"],
                                   capture_output=True, preexec_fn=_without_file_permission_override)
            unreadable = probe.returncode != 0
        except subprocess.SubprocessError:
            unreadable = False
        needs(unreadable, "cannot make a file unreadable here (root without CAP_SETPCAP?)")
        result = run_compress(os.fspath(tmp_path), preexec_fn=_without_file_permission_override)
    finally:
        secret.chmod(0o644)
    assert result.returncode == 1
    assert error_lines(result) == ["servestatic: error: js/secret.js: cannot read: Permission denied"]
    # Everything else was compressed and listed; the unreadable file is not.
    files = manifest(tmp_path)["files"]
    assert "js/secret.js" not in files
    assert set(files["js/module0.js"]["variants"]) == {"br", "gzip"}
    assert not (tmp_path / "js" / "secret.js.br").exists()


def test_variant_path_taken_by_a_directory(tmp_path: Path) -> None:
    make_tree(tmp_path)
    (tmp_path / "index.html.br").mkdir()
    (tmp_path / "index.html.br" / "keep").write_text("user data")
    result = run_compress(os.fspath(tmp_path))
    assert result.returncode == 1
    lines = error_lines(result)
    assert len(lines) == 1
    assert lines[0].startswith("servestatic: error: index.html: cannot write variant: ")
    # The directory and its content are untouched, no half-written .gz and no
    # temporary file is left, and the rest of the tree is done.
    assert (tmp_path / "index.html.br" / "keep").read_text() == "user data"
    assert not (tmp_path / "index.html.gz").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert (tmp_path / "js" / "module0.js.br").exists()


def _limit_file_size(limit: int) -> Any:
    """A full disk, as far as writes go: files cannot grow past `limit` bytes.

    Python ignores SIGXFSZ, so the write fails with EFBIG instead of killing us.
    """
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_full_disk_keeps_previous_variants_and_manifest_entry(tmp_path: Path) -> None:
    # A big file compressed once, then changed so that its new variants no
    # longer fit; a small file changed too, whose new variants do fit.
    big = write(tmp_path / "big.js", text(100_000, seed=1))
    small = write(tmp_path / "small.js", text(3000, seed=2))
    compress_json(tmp_path)
    old_br = (tmp_path / "big.js.br").read_bytes()
    old_gz = (tmp_path / "big.js.gz").read_bytes()
    old_entry = manifest(tmp_path)["files"]["big.js"]

    # Half noise: its variants are hundreds of KB, far past the 64 KB limit.
    write(big, noise(300_000, seed=3) + text(300_000, seed=4))
    new_small = write(small, text(3000, seed=5)).read_bytes()
    result = run_compress(os.fspath(tmp_path), preexec_fn=_limit_file_size(64 * 1024))

    assert result.returncode == 1
    assert error_lines(result) == ["servestatic: error: big.js: cannot write variant: File too large"]
    assert (tmp_path / "big.js.br").read_bytes() == old_br
    assert (tmp_path / "big.js.gz").read_bytes() == old_gz
    files = manifest(tmp_path)["files"]
    assert files["big.js"] == old_entry
    assert files["small.js"]["hash"] == expected_hash(new_small)
    assert brotli.decompress((tmp_path / "small.js.br").read_bytes()) == new_small
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_full_disk_on_the_manifest_keeps_the_previous_one(tmp_path: Path) -> None:
    # Many small files make a manifest of ~150 KB; each file is under the limit.
    for index in range(1000):
        write(tmp_path / f"f{index:04}.txt", b"x" * 10)
    compress_json(tmp_path)
    previous = (tmp_path / MANIFEST_NAME).read_bytes()
    assert len(previous) > 64 * 1024
    write(tmp_path / "new.txt", b"y" * 10)
    result = run_compress(os.fspath(tmp_path), preexec_fn=_limit_file_size(64 * 1024))
    assert result.returncode == 1
    assert error_lines(result) == [
        f"servestatic: error: {MANIFEST_NAME}: cannot write manifest: File too large"
    ]
    assert (tmp_path / MANIFEST_NAME).read_bytes() == previous
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# --- the manifest --------------------------------------------------------------------------


def test_manifest_content(site: Path, tmp_path: Path) -> None:
    write(site / ".well-known" / "security.txt", b"Contact: mailto:security@example.com\n")
    outside = write(tmp_path / "outside" / "secret.txt", b"not part of the site")
    (site / "leak.txt").symlink_to(outside)
    (site / "inside.css").symlink_to(site / "css" / "print.css")
    compress_json(site)
    data = manifest(site)

    assert data["format"] == 1
    assert data["generator"].startswith("servestatic ")
    assert set(data["compression"]) == {"br", "gzip", "dcz"}  # dcz: the deltas' (tests/test_deltas.py)
    files = data["files"]
    on_disk = {
        path.relative_to(site).as_posix()
        for path in site.rglob("*")
        if path.is_file() and not path.name.endswith((".br", ".gz"))
    }
    expected = {
        name for name in on_disk
        if not any(part.startswith(".") for part in name.split("/")[1 if name.startswith(".well-known/")
                                                                   else 0:])
        and name != "leak.txt"
    }
    assert set(files) == expected
    assert ".env" not in files
    assert MANIFEST_NAME not in files
    assert "leak.txt" not in files
    assert ".well-known/security.txt" in files
    assert "data/résumé.txt" in files
    assert "inside.css" in files  # a symlink that stays inside the root is a file

    for name, entry in files.items():
        html = entry["content_type"].startswith("text/html")
        assert set(entry) - {"preload", "family"} == {"size", "hash", "content_type", "immutable", "mtime",
                                                      "variants", "tried", "digests", "integrity"}
        # A family (tests/test_deltas.py) only for a compressible content-hashed file.
        assert "family" not in entry or (entry["immutable"] and entry["variants"]), name
        assert html or "preload" not in entry, name  # hints only for HTML (tests/test_http_preload.py)
        content = (site / name).read_bytes()
        assert entry["size"] == len(content), name
        assert entry["hash"] == expected_hash(content), name
        assert entry["digests"] == expected_digests(content), name
        assert entry["integrity"] == "sha384-" + base64.b64encode(hashlib.sha384(content).digest()).decode()
        assert entry["mtime"] is None or entry["mtime"] == int((site / name).stat().st_mtime)
        for encoding, variant in entry["variants"].items():
            suffix = {"br": ".br", "gzip": ".gz"}[encoding]
            variant_bytes = (site / (name + suffix)).read_bytes()
            assert variant == {"size": len(variant_bytes), "hash": expected_hash(variant_bytes),
                               "digests": expected_digests(variant_bytes)}

    assert files["css/site.0123456789ab.css"]["immutable"] is True
    assert files["assets/app-3fA9c1bd.js"]["immutable"] is True
    assert files["index.html"]["immutable"] is False
    assert files["index.html"]["content_type"] == "text/html; charset=utf-8"
    assert files["data/résumé.txt"]["content_type"] == "text/plain; charset=utf-8"
    assert set(files["index.html"]["variants"]) == {"br", "gzip"}


def test_manifest_is_valid_utf8_json_with_raw_names(site: Path) -> None:
    compress_json(site)
    raw = (site / MANIFEST_NAME).read_bytes()
    assert "résumé".encode() in raw


def test_reproducible_build_mtime_is_not_recorded(tmp_path: Path) -> None:
    path = write(tmp_path / "a.css", text(1000))
    os.utime(path, (315532801, 315532801))  # 1980-01-01T00:00:01Z, as CNB stamps files
    real = write(tmp_path / "b.css", text(1000, seed=1))
    os.utime(real, (1_700_000_000, 1_700_000_000))
    compress_json(tmp_path)
    files = manifest(tmp_path)["files"]
    assert files["a.css"]["mtime"] is None
    assert files["b.css"]["mtime"] == 1_700_000_000


@pytest.mark.parametrize(
    ("pattern", "immutable"),
    [("none", set()), (r"^js/module[12]\.js$", {"js/module1.js", "js/module2.js"})],
)
def test_immutable_pattern_setting(tmp_path: Path, pattern: str, immutable: set[str]) -> None:
    make_tree(tmp_path)
    write(tmp_path / "css" / "site.0123456789ab.css", text(1000))
    compress_json(tmp_path, env={"SERVESTATIC_IMMUTABLE_PATTERN": pattern})
    files = manifest(tmp_path)["files"]
    assert {name for name, entry in files.items() if entry["immutable"]} == immutable


# --- cache directory, output -----------------------------------------------------------------


def test_warm_cache_dir_fills_a_fresh_tree_without_compressing(tmp_path: Path) -> None:
    source = tmp_path / "source"
    make_tree(source)
    cache = tmp_path / "cache"
    first_tree = tmp_path / "first"
    second_tree = tmp_path / "second"
    shutil.copytree(source, first_tree)
    shutil.copytree(source, second_tree)

    first = compress_json(first_tree, "--cache-dir", os.fspath(cache))
    assert compressed(first, "br") == 7
    second = compress_json(second_tree, env={"SERVESTATIC_CACHE_DIR": os.fspath(cache)})
    for encoding in ("br", "gzip"):
        assert compressed(second, encoding) == 0
        assert second["encodings"][encoding]["from_cache"] == 7
    outputs = sorted(p.relative_to(first_tree) for p in first_tree.rglob("*") if p.suffix in {".br", ".gz"})
    assert len(outputs) == 14
    for relative in outputs:
        assert (second_tree / relative).read_bytes() == (first_tree / relative).read_bytes()
    assert manifest(second_tree)["files"] == manifest(first_tree)["files"]


def test_cache_is_keyed_by_parameters(tmp_path: Path) -> None:
    """A cached output made with another gzip effort is never used."""
    make_tree(tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    cache = os.fspath(tmp_path / "cache")
    compress_json(tmp_path / "a", "--cache-dir", cache)
    summary = compress_json(tmp_path / "b", "--cache-dir", cache, "--gzip-effort", "fast")
    assert compressed(summary, "gzip") == 7
    assert summary["encodings"]["br"]["from_cache"] == 7


def test_json_summary_shape(tmp_path: Path) -> None:
    make_tree(tmp_path)
    write(tmp_path / "js" / "random.js", noise(3000))  # compressible by name, not by content
    summary = compress_json(tmp_path)
    assert set(summary) == {"files", "bytes", "seconds", "removed_variants", "errors", "encodings", "deltas"}
    assert summary["files"] == 9
    assert summary["bytes"] == sum(p.stat().st_size for p in tmp_path.rglob("*")
                                   if p.is_file() and p.suffix not in {".br", ".gz"}
                                   and p.name != MANIFEST_NAME)
    assert summary["errors"] == []
    assert isinstance(summary["seconds"], float)
    assert set(summary["encodings"]) == {"br", "gzip"}
    files = manifest(tmp_path)["files"]
    for encoding, stats in summary["encodings"].items():
        assert set(stats) == {"files", "original_bytes", "variants", "variant_bytes", "client_bytes",
                              "compressed", "from_cache", "reused", "incompressible"}
        assert stats["files"] == 8
        # Written: the variant files beside the originals, and nothing else.
        written = list(tmp_path.rglob("*" + {"br": ".br", "gzip": ".gz"}[encoding]))
        assert stats["variants"] == len(written) == 7
        assert stats["variant_bytes"] == sum(path.stat().st_size for path in written)
        # What a client of this encoding gets: each variant, or the original without one.
        assert stats["client_bytes"] == sum(
            entry["variants"][encoding]["size"] if encoding in entry["variants"] else entry["size"]
            for entry in files.values() if entry["tried"])
        assert stats["variant_bytes"] < stats["client_bytes"] < stats["original_bytes"]


def test_summary_line_when_not_a_terminal(tmp_path: Path) -> None:
    make_tree(tmp_path)
    result = run_compress(os.fspath(tmp_path))
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("8 files, ")
    assert "br: 7 variants, " in lines[0] and " bytes written for 7 files of " in lines[0]
    assert "(a br client gets " in lines[0]
    assert "gzip: 7 variants, " in lines[0]


def test_compress_tree_in_process_matches_the_cli(tmp_path: Path) -> None:
    """The library entry point (used by the buildpack and tests) writes the same output."""
    make_tree(tmp_path / "cli")
    shutil.copytree(tmp_path / "cli", tmp_path / "lib")
    compress_json(tmp_path / "cli")
    summary = compress_tree(tmp_path / "lib", CompressOptions.defaults())
    assert summary.errors == []
    assert manifest(tmp_path / "lib")["files"] == manifest(tmp_path / "cli")["files"]


def test_worker_pool_output_matches_one_process(tmp_path: Path) -> None:
    """Above the in-process threshold the pool is used; its output is the same bytes."""
    for index in range(8):
        write(tmp_path / "pool" / f"part{index}.js", text(40_000, seed=index))
    shutil.copytree(tmp_path / "pool", tmp_path / "single")
    compress_json(tmp_path / "pool", "--workers", "2")
    compress_json(tmp_path / "single", "--workers", "1")
    assert manifest(tmp_path / "pool")["files"] == manifest(tmp_path / "single")["files"]


# --- the incompressibility probe ------------------------------------------------------


def test_large_incompressible_file_is_probed_once_and_recorded(tmp_path: Path) -> None:
    """Random bytes under a compressible name: no brotli 11 or zopfli is spent on them."""
    write(tmp_path / "data" / "blob.bin", noise(PROBE_MIN_SIZE * 4))
    write(tmp_path / "app.js", text(PROBE_MIN_SIZE * 2))
    first = compress_json(tmp_path)
    for encoding in ("br", "gzip"):
        assert first["encodings"][encoding]["incompressible"] == 1
        assert first["encodings"][encoding]["compressed"] == 1  # app.js only
        assert first["encodings"][encoding]["variants"] == 1
    entry = manifest(tmp_path)["files"]["data/blob.bin"]
    assert entry["incompressible"] is True
    assert entry["variants"] == {}
    assert "incompressible" not in manifest(tmp_path)["files"]["app.js"]
    assert not list(tmp_path.glob("data/blob.bin.*"))

    second = compress_json(tmp_path)  # the verdict is reused, not probed again
    for encoding in ("br", "gzip"):
        assert second["encodings"][encoding]["incompressible"] == 0
        assert second["encodings"][encoding]["reused"] == 2
    assert manifest(tmp_path)["files"]["data/blob.bin"]["incompressible"] is True


def test_probe_keeps_what_compresses_and_small_files_are_not_probed(tmp_path: Path) -> None:
    # Large, with a repeat farther apart than zopfli's or a sample's reach: brotli
    # 11 still finds it (its window is 4 MiB), so the probe must not rule it out.
    block = noise(PROBE_MIN_SIZE * 2)
    write(tmp_path / "twice.bin", block + block)
    # Small and barely compressible: the 95% rule decides, the probe is not asked.
    write(tmp_path / "small.txt", noise(PROBE_MIN_SIZE // 2))
    summary = compress_json(tmp_path)
    files = manifest(tmp_path)["files"]
    assert "br" in files["twice.bin"]["variants"]
    assert "incompressible" not in files["twice.bin"]
    assert files["small.txt"]["variants"] == {} and "incompressible" not in files["small.txt"]
    assert summary["encodings"]["br"]["incompressible"] == 0


def test_the_compressed_tree_is_writable_by_its_owner_alone(tmp_path: Path) -> None:
    """A group-writable build context (git archive, umask 002) copied into an image whose
    server runs in group 0: after compress, nothing in the tree may be changed by the
    group or others. Run as root, as a Dockerfile's compress step runs."""
    root = tmp_path / "dist"
    (root / "css").mkdir(parents=True)
    (root / "index.html").write_bytes(text(4000))
    (root / "css" / "site.css").write_bytes(text(3000, seed=1))
    (root / "robots.txt").write_bytes(b"User-agent: *\n")  # too small to compress
    (root / "css" / "link.css").symlink_to("site.css")
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o777 if path.is_dir() else 0o666)
    result = run_compress(str(root))
    assert result.returncode == 0, result.stderr
    writable = [str(path.relative_to(root)) for path in [root, *root.rglob("*")]
                if not path.is_symlink() and path.lstat().st_mode & 0o022]
    assert writable == []
    # Still readable by everyone (any UID runs the image) and writable by the owner.
    assert (root / "index.html").stat().st_mode & 0o777 == 0o644
    assert (root / "css").stat().st_mode & 0o777 == 0o755
    assert {"index.html.br", "site.css.br"} <= {path.name for path in root.rglob("*.br")}

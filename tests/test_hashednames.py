"""Which names carry a content hash: the names build tools write, and names that only look like it.

A false positive makes a CDN keep a stale file for a year, so the negatives
matter as much as the positives.
"""

from __future__ import annotations

import pytest

from servestatic.site.hashednames import has_content_hash, immutable_test


@pytest.mark.parametrize(
    "path",
    [
        # Django ManifestStaticFilesStorage: 12 hex digits.
        "css/site.0123456789ab.css",
        "admin/js/core.5b5e0a1cf0d2.js",
        "static/img/logo.a1b2c3d4e5f6.svg",
        # Vite / Rollup: [name]-[hash], 8+ base64url characters.
        "assets/app-3fA9c1bd.js",
        "assets/format-Bq7xK2pL.js",
        "assets/index-B-x3kQ9z.js",
        "assets/vendor-AbC12_xy.js",
        "assets/style-Dk9_zW2q.css",
        # webpack [name].[contenthash].js and [contenthash:8].
        "dist/main.4f2a9c1e8b7d6a5f4e3d.js",
        "dist/vendors.9e1f2a3b.js",
        # webpack [name]-[contenthash:8].
        "dist/chunk-3fa9c1bd.js",
        # create-react-app.
        "static/js/main.3fa9c1bd.chunk.js",
        "static/css/main.073c9b0a.css",
        # A hash anywhere before the extension, deep in a tree.
        "a/b/c/d/e/runtime.0a1b2c3d4e5f.js.map",
    ],
)
def test_hashed_names(path: str) -> None:
    assert has_content_hash(path)


@pytest.mark.parametrize(
    "path",
    [
        "my-date-picker.js",
        "jquery-3.7.1.min.js",
        "report.20240101.pdf",
        "DatePicker-DatePicker.js",
        "components/DatePicker.js",
        "widget-DatePickerInput.js",
        "icons-SOMEICONS.svg",
        "index.html",
        "robots.txt",
        "app.js",
        "bootstrap.bundle.min.js",
        "vue.runtime.esm-browser.prod.js",
        "chunk-vendors.js",
        "font-awesome-4.7.0.css",  # "awesome-4" is 9 characters after a '-'
        "theme-bootstrap5.css",
        "lib-1-2-3-4.js",
        "widget-DatePicker-v2.js",
        "my-Component2024.js",
        "archive.12345678.tar",  # digits only: a date or a build number
        "deadbeef.js",  # the first segment is the name, not a hash
        "abcdefab.cafebabe.js",  # hex letters only: a word, not a hash
        "photo-20240101.jpg",
        "lodash-es.js",
        "bootstrap-icons.woff2",
    ],
)
def test_names_that_are_not_hashed(path: str) -> None:
    assert not has_content_hash(path)


def test_only_the_file_name_counts() -> None:
    """A hashed directory does not make every file in it immutable."""
    assert not has_content_hash("build.0123456789ab/index.html")
    assert not has_content_hash("assets-3fA9c1bd/app.js")


def test_auto_is_the_built_in_rules() -> None:
    test = immutable_test("auto")
    assert test("css/site.0123456789ab.css")
    assert not test("css/site.css")


def test_none_marks_nothing() -> None:
    test = immutable_test("none")
    assert not test("css/site.0123456789ab.css")
    assert not test("assets/app-3fA9c1bd.js")


def test_user_regex_is_searched_in_the_path() -> None:
    test = immutable_test(r"^build/|\.v\d+\.")
    assert test("build/app.js")
    assert test("lib/app.v12.js")
    assert not test("static/build/app.js")
    assert not test("css/site.0123456789ab.css")  # the regex replaces the built-in rules

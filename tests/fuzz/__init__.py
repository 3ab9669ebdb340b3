"""Coverage-guided fuzzing (atheris, libFuzzer) of the parsers that read what a client or a
build sends: the loop's request-head reader, the Range, conditional and Accept-Encoding
parsers, and the manifest reader.

Each target is a module here with `TestOneInput(data: bytes)`, which calls the parser and
asserts its contract (not only that it does not raise); none imports atheris, so pytest
can replay the checked-in corpus (`corpus/<target>/`) through them in-process.
`python -m tests.fuzz TARGET [libFuzzer options] [corpus dirs]` runs one under atheris,
with servestatic instrumented; `runner.py` does that in a subprocess for the test suite
(tests/test_atheris.py, a bounded run) and bench/fuzz.py (long runs, corpus merging).
"""

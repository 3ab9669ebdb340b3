"""Run one fuzz target under atheris: `python -m tests.fuzz TARGET [libFuzzer options] [corpus dirs]`.

servestatic's modules are imported inside `atheris.instrument_imports`, so libFuzzer sees
their branches (and only theirs: the target's own checks and gunicorn are not its to
explore). atheris' regex and str hooks stay off: their proxy objects do not take
`match(string, pos)`, which the parsers use.
"""

from __future__ import annotations

import importlib
import sys

import atheris

from tests.fuzz.runner import TARGETS


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: python -m tests.fuzz {{{','.join(TARGETS)}}} [libFuzzer options] [corpus dirs]")
    name = sys.argv.pop(1)
    with atheris.instrument_imports(include=["servestatic"]):
        target = importlib.import_module(f"tests.fuzz.{name}")
    # libFuzzer runs argv[0] again through the shell for -merge=1 and -fork: the module's
    # file is no program, the interpreter with `-m tests.fuzz TARGET` is.
    command = f"{sys.executable} -m tests.fuzz {name}"
    atheris.Setup([command, *sys.argv[1:]], target.TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()

"""Make "the loop alone": a copy of the package whose worker answers a head it has seen
before with the bytes it sent for it last time (docs/design.md, "Where nginx is still ahead").

    .venv/bin/python bench/loop_alone.py [REVISION]   # HEAD by default; 'worktree': the files as they are
    .venv/bin/python bench/serve_bench.py --suite wsgi --only throughput --servers ours,nginx \\
        --scenarios html-1k,html-1k-browser,revalidate-304 --variant loop-alone=path:.cache/bench-loop-alone

An experiment, never a server: it skips the head reader, the decision, the header
assembly and the access log for any head it has answered in memory with a 200 or a
304, so what it costs is the event loop, recv and send. The patch is three text
replacements into the exported server/connection.py; each must apply, or this stops.
"""

from __future__ import annotations

import sys
from pathlib import Path

from serve_bench import patched_copy

REPO = Path(__file__).resolve().parent.parent
TARGET = REPO / ".cache" / "bench-loop-alone"

PARSE = ("            request = parse_head(data, start, end, self._limits, self._route, "
         "self.worker.scheme_headers)")
PATCHES = {"server/connection.py": (
    ("class StaticProtocol(gunicorn_protocol.ASGIProtocol):",
     "_SEEN: dict = {}\n\n\nclass StaticProtocol(gunicorn_protocol.ASGIProtocol):"),
    (PARSE,
     "            seen = _SEEN.get(data[start:end])\n"
     "            if seen is not None:\n"
     "                self.transport.write(seen)\n"
     "                start = end + 4\n"
     "                if start == len(data):\n"
     "                    return b\"\"\n"
     "                continue\n"
     "            self._seen_head = data[start:end]\n" + PARSE),
    ("            body = answer.body or b\"\"\n            self.transport.write(head + body)",
     "            body = answer.body or b\"\"\n            self.transport.write(head + body)\n"
     "            if answer.status[:3] in (\"200\", \"304\") and keep_alive:\n"
     "                _SEEN[self._seen_head] = head + body"),
)}


def main() -> int:
    revision = sys.argv[1] if len(sys.argv) > 1 else "HEAD"
    patched_copy(revision, TARGET, PATCHES, "loop_alone")
    print(f"--variant loop-alone=path:{TARGET}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""servestatic's error log: one line per event, whatever logging the user's app sets up.

`servestatic serve` puts one handler on the root logger, so that servestatic's own
warnings and those of an app that configures nothing reach stderr. An app may
configure logging itself (Django applies `LOGGING` when it is set up): a record its
own console handler prints would then propagate to the root and be printed a second
time (`Not Found: /x`, then `servestatic: WARNING: Not Found: /x`). `NotPrintedElsewhere`
keeps the root handler to the records that no handler between the record's logger and
the root writes to a console.
"""

from __future__ import annotations

import logging
import sys

FORMAT = "servestatic: %(levelname)s: %(message)s"


def configure_logging(level: str = "info") -> None:
    """The root handler to stderr, printing only what no other console handler prints."""
    logging.basicConfig(level=level.upper(), format=FORMAT, stream=sys.stderr)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(item, NotPrintedElsewhere) for item in handler.filters):
            handler.addFilter(NotPrintedElsewhere())


class NotPrintedElsewhere(logging.Filter):
    """Pass a record only when no handler below the root prints it to a console.

    Checked when a record reaches the root handler, not when the handler is made:
    the app's LOGGING is applied after servestatic's handler, at import. A handler
    that writes to a file, mails or sends elsewhere is not a console: the record is
    still printed here. Logging is off the request path's hot part (warnings, errors).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        logger: logging.Logger | None = logging.getLogger(record.name)
        root = logging.getLogger()
        while logger is not None and logger is not root:
            if any(_prints(handler, record) for handler in logger.handlers):
                return False
            logger = logger.parent  # type: ignore[assignment]
        return True


def _prints(handler: logging.Handler, record: logging.LogRecord) -> bool:
    """Whether handler writes this record to stdout or stderr."""
    if not isinstance(handler, logging.StreamHandler) or isinstance(handler, logging.FileHandler):
        return False
    if getattr(handler, "stream", None) not in (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__):
        return False
    return record.levelno >= handler.level and bool(handler.filter(record))

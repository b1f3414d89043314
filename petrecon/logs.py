"""The ``petrecon`` logger's one-line format, shared by the command line and batch workers.

Examples
--------
>>> import logging
>>> LineFormatter().format(logging.LogRecord("petrecon", logging.WARNING, "", 0, "no delays", None, None))
'petrecon: warning: no delays'
"""

from __future__ import annotations

import logging
import sys

LOGGER_NAME = "petrecon"


class LineFormatter(logging.Formatter):
    """``petrecon: LEVEL: message`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        return f"petrecon: {record.levelname.lower()}: {record.getMessage()}"


def configure_logging(level: int) -> None:
    """Send the ``petrecon`` logger's records at ``level`` and above to stderr, one line each.

    Calling it again replaces the handler it added before (and keeps handlers others added).
    """
    logger = logging.getLogger(LOGGER_NAME)
    for handler in [h for h in logger.handlers if isinstance(h.formatter, LineFormatter)]:
        logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LineFormatter())
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False

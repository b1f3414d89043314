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
from pathlib import Path

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


class WarningRecorder(logging.Handler):
    """Keeps the messages of the ``petrecon`` logger's warnings, for the provenance of the outputs."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message not in self.messages:
            self.messages.append(message)


#: Records every warning of the ``petrecon`` logger since :func:`recorded_warnings` was last cleared.
RECORDER = WarningRecorder()
logging.getLogger(LOGGER_NAME).addHandler(RECORDER)


def recorded_warnings(clear: bool = False) -> list[str]:
    """The warnings logged so far (:data:`RECORDER`); ``clear`` starts a new record (a new command)."""
    if clear:
        RECORDER.messages.clear()
    return list(RECORDER.messages)


def log_library_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A ``warnings.showwarning`` that logs a library's warning (pydicom, numpy) as one ``petrecon`` line."""
    origin = Path(str(filename)).parent.name if Path(str(filename)).name == "__init__.py" else Path(str(filename)).stem
    text = " ".join(str(message).split())
    logging.getLogger(f"{LOGGER_NAME}.library").warning("%s (%s, %s)", text, category.__name__, origin)

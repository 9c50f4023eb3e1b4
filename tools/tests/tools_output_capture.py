"""Capture everything an in-process local stack writes: stdout, stderr and every log record.

pytest's own capture hands output to the report of whichever test is running, and the
powertools loggers of the stages write to the stream that was ``sys.stdout`` when their
module was imported (often pytest's). So the capture here does three things while it is
active, and undoes them on exit:

* ``sys.stdout`` and ``sys.stderr`` are teed (output still goes where it went);
* the stream of every ``StreamHandler`` of every logger is teed, which catches the
  powertools JSON lines exactly as they are written, appended keys included;
* a handler on the root logger and on every logger that does not propagate records
  each record: its message, every attribute (``extra`` fields) and its traceback.

The root logger is set to INFO (the local stack's access log) and every ``ryuzen*``
logger to DEBUG, so even debug lines are searched. ``rescan()`` hooks loggers and
handlers created since (a stage's module is imported when the stack starts).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from types import TracebackType
from typing import Any, TextIO


class _Tee:
    """A text stream that records what is written before passing it on."""

    def __init__(self, target: TextIO, capture: OutputCapture) -> None:
        self._target = target
        self.owner = capture

    def write(self, text: str) -> int:
        self.owner.record(text)
        return self._target.write(text)

    def flush(self) -> None:
        self._target.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


class _RecordHandler(logging.Handler):
    def __init__(self, capture: OutputCapture) -> None:
        super().__init__(level=logging.NOTSET)
        self._capture = capture

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is still searched as its parts
            message = f"{record.msg!r} {record.args!r}"
        fields = json.dumps(record.__dict__, default=repr, ensure_ascii=False)
        text = f"{record.name} {record.levelname} {message} {fields}\n"
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info) + "\n"
        self._capture.record(text)


class OutputCapture:
    """Records all output of this process while active (a context manager)."""

    def __init__(self, debug_prefix: str = "ryuzen") -> None:
        self._debug_prefix = debug_prefix
        self._lock = threading.Lock()
        self._chunks: list[str] = []
        self._active = False
        self._handler = _RecordHandler(self)
        self._streams: dict[int, tuple[TextIO, TextIO]] = {}  # sys.stdout/stderr
        self._teed: list[tuple[logging.StreamHandler[Any], Any]] = []
        self._hooked: list[logging.Logger] = []
        self._levels: dict[str, int] = {}

    def record(self, text: str) -> None:
        if self._active and text:
            with self._lock:
                self._chunks.append(text)

    def text(self, since: int = 0) -> str:
        """Everything recorded (from chunk ``since`` on: see ``mark``)."""
        with self._lock:
            return "".join(self._chunks[since:])

    def mark(self) -> int:
        """A position to read from later with ``text(since=...)``."""
        with self._lock:
            return len(self._chunks)

    def __enter__(self) -> OutputCapture:
        self._active = True
        for index, name in enumerate(("stdout", "stderr")):
            original = getattr(sys, name)
            tee = _Tee(original, self)
            setattr(sys, name, tee)
            self._streams[index] = (original, tee)
        root = logging.getLogger()
        self._levels[""] = root.level
        root.setLevel(logging.INFO)
        self.rescan()
        return self

    def rescan(self) -> None:
        """Hook loggers and stream handlers created since the last scan."""
        loggers = [logging.getLogger()] + [
            item for item in logging.Logger.manager.loggerDict.values()
            if isinstance(item, logging.Logger)
        ]  # fmt: skip
        teed = {id(handler) for handler, _ in self._teed}
        for logger in loggers:
            if logger.name.startswith(self._debug_prefix) and logger.name not in self._levels:
                self._levels[logger.name] = logger.level
                logger.setLevel(logging.DEBUG)
            if (logger is logging.getLogger() or not logger.propagate) and (
                logger not in self._hooked
            ):
                logger.addHandler(self._handler)
                self._hooked.append(logger)
            for handler in logger.handlers:
                if (
                    isinstance(handler, logging.StreamHandler)
                    and id(handler) not in teed
                    # a tee of this capture already (the handler was made while
                    # sys.stdout was teed); one of an earlier capture is teed again
                    and not (isinstance(handler.stream, _Tee) and handler.stream.owner is self)
                    and not type(handler).__module__.startswith("_pytest")
                ):
                    original = handler.setStream(_Tee(handler.stream, self))  # type: ignore[arg-type]
                    self._teed.append((handler, original))
                    teed.add(id(handler))

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._active = False
        for handler, original in self._teed:
            handler.setStream(original)
        self._teed = []
        for logger in self._hooked:
            logger.removeHandler(self._handler)
        self._hooked = []
        for name, level in self._levels.items():
            logging.getLogger(name or None).setLevel(level)
        self._levels = {}
        for index, name in enumerate(("stdout", "stderr")):
            original, tee = self._streams[index]
            if getattr(sys, name) is tee:
                setattr(sys, name, original)
        self._streams = {}

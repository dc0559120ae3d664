"""What the live progress display needs from the terminal besides drawing its table.

* :class:`LogsAbove`: while a rich ``Live`` table is on screen, a log record written
  straight to the terminal lands under the table, and the next redraw (which moves the
  cursor up by the table's height) tears both. Records are routed through the live
  console instead, so they scroll above one table.
* :class:`TailReader`: the last line each running job printed (its epoch, its loss),
  read from the job's log by a daemon thread: a slow or hung file system stalls
  that thread, never the event loop that schedules the jobs.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterable
from typing import IO, Any

__all__ = ["LogsAbove", "TailReader", "last_line"]

#: Bytes read from the end of a log for its last line: a line longer than this is cut.
_TAIL_BYTES = 4096
#: CSI/OSC escape sequences (colours, cursor moves) and other control characters.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def last_line(path: str, max_bytes: int = _TAIL_BYTES) -> str:
    """The last non-blank line of the file at ``path`` as a terminal would show it ("" if none).

    A progress bar redrawn with ``\\r`` shows its latest state; colour codes and other
    control characters are dropped.

    Example:
        >>> import tempfile
        >>> with tempfile.NamedTemporaryFile("w", suffix=".log", delete=False) as f:
        ...     _ = f.write("epoch 1\\nepoch 2 10%\\r\\x1b[32mepoch 2 50%\\x1b[0m\\n\\n")
        >>> last_line(f.name)
        'epoch 2 50%'
    """
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read(max_bytes)
    except OSError:  # not created yet, or removed: nothing to show
        return ""
    text = data.decode("utf-8", errors="replace")
    for line in reversed(text.split("\n")):
        shown = _CONTROL.sub("", _ESCAPES.sub("", line.rstrip("\r").rsplit("\r", 1)[-1]))
        if shown.strip():
            return shown.strip()
    return ""


class TailReader:
    """Keeps :attr:`lines` (path -> last line) fresh for the paths last passed to :meth:`want`.

    The reads happen in a daemon thread every ``interval`` seconds; :meth:`want` and
    :attr:`lines` only swap whole objects, so the event loop never waits on a file.

    Example:
        >>> reader = TailReader(interval=0.1)
        >>> reader.want([])  # no running job: the thread is not even started
        >>> reader.lines, reader.stop()
        ({}, None)
    """

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self.lines: dict[str, str] = {}
        self._paths: tuple[str, ...] = ()
        self._wake = threading.Event()
        #: Set after each pass over the paths (tests wait on it).
        self.refreshed = threading.Event()
        self._stopped = False
        self._thread: threading.Thread | None = None

    def want(self, paths: Iterable[str]) -> None:
        """Read these paths from now on (the running jobs' logs)."""
        paths = tuple(paths)
        if paths != self._paths:
            self._paths = paths
            self._wake.set()  # a new job's line shows at the next redraw, not a second later
        if paths and self._thread is None and not self._stopped:
            self._thread = threading.Thread(
                target=self._loop, name="runner-progress-tails", daemon=True
            )
            self._thread.start()

    def _loop(self) -> None:
        while not self._stopped:
            self._wake.clear()
            self.lines = {path: last_line(path) for path in self._paths}
            self.refreshed.set()
            self._wake.wait(self.interval)

    def stop(self) -> None:
        """Stop reading; the thread ends at its next wake-up (it is a daemon: never waited for)."""
        self._stopped = True
        self._wake.set()


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class LogsAbove:
    """Routes the terminal-bound log handlers through ``console`` while a live display is up.

    The handlers are those a ``runner`` record reaches (the ``runner`` logger's and its
    ancestors', the root's included, which is where ``logging.basicConfig`` puts one)
    that are stream handlers writing to a terminal. Each keeps its formatter; only its
    stream changes, to a rich ``FileProxy`` that prints complete lines through the
    console (above the live table), and is given back by :meth:`restore`. A handler
    writing to a file, or already following ``sys.stderr`` (which ``Live`` redirects
    itself), is left alone.

    Example:
        >>> from rich.console import Console
        >>> import io
        >>> above = LogsAbove(Console(file=io.StringIO()))
        >>> above.divert(); above.restore()
    """

    def __init__(self, console: Any, logger_name: str = "runner") -> None:
        self.console = console
        self.logger_name = logger_name
        self._diverted: list[tuple[logging.StreamHandler[Any], IO[str], Any]] = []

    def _handlers(self) -> list[logging.StreamHandler[Any]]:
        from rich.file_proxy import FileProxy

        found: list[logging.StreamHandler[Any]] = []
        current: logging.Logger | None = logging.getLogger(self.logger_name)
        while current is not None:
            for handler in current.handlers:
                if not isinstance(handler, logging.StreamHandler) or isinstance(
                    handler, logging.FileHandler
                ):
                    continue
                stream = handler.stream
                if isinstance(stream, FileProxy) or not _is_terminal(stream):
                    continue
                if handler not in found:
                    found.append(handler)
            current = current.parent if current.propagate else None
        return found

    def divert(self) -> None:
        """Point each terminal-bound handler at the console. Idempotent until :meth:`restore`."""
        if self._diverted:
            return
        from rich.file_proxy import FileProxy

        for handler in self._handlers():
            proxy = FileProxy(self.console, handler.stream)
            previous = handler.setStream(proxy)
            if previous is not None:
                self._diverted.append((handler, previous, proxy))

    def restore(self) -> None:
        """Give each handler its own stream back (a half-written line is flushed first)."""
        diverted, self._diverted = self._diverted, []
        for handler, previous, proxy in diverted:
            try:
                proxy.flush()
            finally:
                if handler.stream is proxy:  # unless someone else changed it meanwhile
                    handler.setStream(previous)

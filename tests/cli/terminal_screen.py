"""A small terminal emulator for tests: what a screen shows after some output.

It knows what rich's live display writes (text, CR, LF, cursor up/down/left/right,
column moves, erase in line and display, colour and cursor-visibility codes ignored)
and keeps every line (no height: what scrolled off stays, as in a scrollback). A line
written under a live table, out of its sight, shows here as it would in a real
terminal: the next redraw starts one line too low and leaves stale rows behind.
"""

from __future__ import annotations

import io
import re

_TOKEN = re.compile(
    r"\x1b\[([?0-9;]*)([A-Za-z])|\x1b\][^\x07]*\x07|\x1b.|\r|\n|\x08|[^\x1b\r\n\x08]"
)


class TtyBuffer(io.StringIO):
    """A string buffer that says it is a terminal (as rich and the log routing check)."""

    def isatty(self) -> bool:
        return True


class Screen:
    """Feed it output; :meth:`lines` is what the screen shows, top to bottom."""

    def __init__(self) -> None:
        self._rows: list[list[str]] = [[]]
        self.row = 0
        self.col = 0

    def _line(self) -> list[str]:
        while len(self._rows) <= self.row:
            self._rows.append([])
        return self._rows[self.row]

    def feed(self, text: str) -> Screen:
        for match in _TOKEN.finditer(text):
            token = match.group(0)
            if match.group(2):
                self._control(match.group(1), match.group(2))
            elif token == "\r":
                self.col = 0
            elif token == "\n":  # a tty's output processing turns LF into CR LF
                self.row += 1
                self.col = 0
                self._line()
            elif token == "\x08":
                self.col = max(0, self.col - 1)
            elif token.startswith("\x1b"):
                continue  # OSC or a two-byte escape: nothing shown
            else:
                line = self._line()
                line.extend(" " * (self.col + 1 - len(line)))
                line[self.col] = token
                self.col += 1
        return self

    def _control(self, params: str, final: str) -> None:
        if params.startswith("?") or final == "m":
            return  # cursor visibility, colours
        n = int(params.split(";")[0]) if params and params.split(";")[0] else None
        line = self._line()
        if final == "A":
            self.row = max(0, self.row - (n or 1))
        elif final == "B":
            self.row += n or 1
        elif final == "C":
            self.col += n or 1
        elif final == "D":
            self.col = max(0, self.col - (n or 1))
        elif final == "G":
            self.col = max(0, (n or 1) - 1)
        elif final == "K":
            if not n:  # to the end of the line
                del line[self.col :]
            elif n == 1:
                line[: self.col] = [" "] * min(self.col, len(line))
            else:
                line.clear()
        elif final == "J":
            if not n:
                del line[self.col :]
                del self._rows[self.row + 1 :]
            elif n == 2:
                self._rows = [[] for _ in self._rows]

    def lines(self) -> list[str]:
        shown = ["".join(row).rstrip() for row in self._rows]
        while shown and not shown[-1]:
            shown.pop()
        return shown

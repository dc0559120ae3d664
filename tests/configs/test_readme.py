"""Every ```python block of configs/README.md runs, in order, in one namespace.

Where the text after a block says what it prints (a fenced block or `inline code`
after the word "prints"), the printed output must be exactly that.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
import types
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "configs" / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```\n", re.DOTALL | re.MULTILINE)
PRINTS = re.compile(
    r"^prints(?:\n\n```\n(?P<fenced>.*?)```|\s+`(?P<inline>[^`]*)`)", re.DOTALL | re.MULTILINE
)


def blocks() -> list[tuple[str, str | None]]:
    """(code, what it is said to print, if anything) for each python block."""
    text = README.read_text()
    found = []
    matches = list(BLOCK.finditer(text))
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        said = PRINTS.search(text, match.end(), end)
        expected = None
        if said is not None:
            expected = said["fenced"] if said["fenced"] is not None else said["inline"] + "\n"
        found.append((match.group(1), expected))
    return found


def test_readme_has_examples_and_output_claims() -> None:
    found = blocks()
    assert len(found) >= 10
    assert sum(expected is not None for _, expected in found) >= 3


def test_readme_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the examples write files
    # A real module, so that pickling the README's classes works by reference.
    module = types.ModuleType("configs_readme_examples")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    for number, (block, expected) in enumerate(blocks(), start=1):
        code = compile(block, f"{README}:block{number}", "exec")
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(code, module.__dict__)  # the README is ours: trusted code
        if expected is not None:
            assert out.getvalue() == expected, f"block {number}"

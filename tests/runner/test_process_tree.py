"""runner._process_tree on a real tree: a subreaper keeps a daemon findable, and kills it.

Both ways of finding children are tested: the kernel's per-task children lists and the
scan of every /proc/<pid>/stat used where the kernel has no such list.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from sched_helpers import pid_alive

from runner import _process_tree

HERE = os.path.dirname(os.path.abspath(__file__))

#: A subreaper that starts the descendants of orphan_jobs, prints their pids, then waits.
_SUBREAPER = f"""
import json, sys
sys.path.insert(0, {HERE!r})
from runner import _process_tree
from orphan_jobs import start_descendants
assert _process_tree.become_subreaper()
print(json.dumps(start_descendants()), flush=True)
sys.stdin.read()
"""


@pytest.fixture(params=["children files", "proc scan"])
def finder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "proc scan":  # as on a kernel without CONFIG_PROC_CHILDREN
        monkeypatch.setattr(_process_tree, "_children_of", lambda pid, **_: None)
    return str(request.param)


@pytest.fixture
def subreaper() -> Iterator[tuple[subprocess.Popen[str], dict[str, int]]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _SUBREAPER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    pids = json.loads(proc.stdout.readline())
    try:
        yield proc, pids
    finally:
        proc.kill()
        proc.wait()
        _process_tree.signal_tree(pids.values(), 9)


def test_a_subreaper_finds_and_kills_what_left_its_session(
    finder: str, subreaper: tuple[subprocess.Popen[str], dict[str, int]]
) -> None:
    proc, pids = subreaper
    found = _process_tree.descendants(proc.pid)
    assert set(pids.values()) <= set(found)  # the setsid child and the daemon included
    assert set(_process_tree.children(proc.pid)) == set(found)  # all are its children now
    killed = _process_tree.kill_descendants(proc.pid)
    assert set(pids.values()) <= killed and proc.pid not in killed
    assert _process_tree.wait_gone(killed, 5.0)
    assert not [p for p in pids.values() if pid_alive(p)]
    assert proc.poll() is None  # the subreaper itself is left to its caller


def test_nothing_is_found_under_a_process_without_children(finder: str) -> None:
    proc = subprocess.Popen(["sleep", "30"])
    try:
        assert _process_tree.descendants(proc.pid) == []
        assert _process_tree.kill_descendants(proc.pid) == set()
    finally:
        proc.kill()
        proc.wait()
    assert _process_tree.descendants(proc.pid) == []  # gone: nothing, and no error

"""The import-report folders in /tmp: a driver's own is kept while it lives, whatever its
name looks like, and removed by the next driver once its owner is gone (SIGKILL)."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from runner._forkserver.reports_dir import LOCK_NAME, PREFIX, ReportsDir, remove_stale_report_dirs

OWNER = textwrap.dedent(
    """
    import sys, tempfile
    tempfile.tempdir = sys.argv[1]
    from runner._forkserver.reports_dir import ReportsDir
    reports = ReportsDir()
    print(reports.ensure(), flush=True)
    sys.stdin.read()  # lives until the test kills it
    """
)


def _start(script: str, tmp: Path) -> subprocess.Popen[str]:
    """``script`` in a new interpreter with ``tmp`` as its temporary directory."""
    return subprocess.Popen(
        [sys.executable, "-c", script, str(tmp)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def _owner(tmp: Path) -> tuple[subprocess.Popen[str], Path]:
    owner = _start(OWNER, tmp)
    assert owner.stdout is not None
    return owner, Path(owner.stdout.readline().strip())


def test_a_killed_drivers_folder_goes_and_a_live_ones_stays(tmp_path: Path) -> None:
    dead, dead_dir = _owner(tmp_path)
    live, live_dir = _owner(tmp_path)
    try:
        (dead_dir / "0.json").write_text("{}")
        dead.send_signal(signal.SIGKILL)
        dead.wait()
        assert remove_stale_report_dirs(str(tmp_path)) == 1
        assert not dead_dir.exists() and live_dir.exists()
    finally:
        live.kill()
        live.wait()


def test_folders_it_cannot_vouch_for_are_left_alone(tmp_path: Path) -> None:
    # An older Runner's folder (no lock file), names made to look like a pid or a huge
    # one, a file, a symlink: none is removed and none stops the caller.
    kept = [
        tmp_path / f"{PREFIX}abcdefgh",
        tmp_path / f"{PREFIX}99999999999999999999-x",
        tmp_path / f"{PREFIX}\u00b2-x",
    ]
    for folder in kept:
        folder.mkdir()
        (folder / "0.json").write_text("{}")
    (tmp_path / f"{PREFIX}file").write_text("")
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / LOCK_NAME).write_text("")
    (tmp_path / f"{PREFIX}link").symlink_to(target)
    assert remove_stale_report_dirs(str(tmp_path)) == 0
    assert all(folder.exists() for folder in kept) and target.exists()


@pytest.mark.skipif(os.getuid() != 0, reason="making another user's folder needs root")
def test_another_users_folder_is_left_alone(tmp_path: Path) -> None:
    folder = tmp_path / f"{PREFIX}theirs"
    folder.mkdir()
    (folder / LOCK_NAME).write_text("")  # unlocked: its owner is gone
    os.chown(folder, 65534, 65534)
    assert remove_stale_report_dirs(str(tmp_path)) == 0 and folder.exists()


def test_this_process_keeps_its_own_folder_and_removes_it_when_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    reports = ReportsDir()
    folder = Path(reports.ensure())
    assert folder.parent == tmp_path and reports.ensure() == str(folder)
    # Another open description of the lock file can't take it: the folder is in use.
    fd = os.open(folder / LOCK_NAME, os.O_RDWR)
    with pytest.raises(BlockingIOError):
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.close(fd)
    assert remove_stale_report_dirs(str(tmp_path)) == 0
    reports.remove()
    assert not folder.exists()


FORKING_OWNER = textwrap.dedent(
    """
    import os, sys, tempfile, time
    tempfile.tempdir = sys.argv[1]
    from runner._forkserver.reports_dir import ReportsDir
    reports = ReportsDir()
    folder = reports.ensure()
    child = os.fork()
    if child == 0:  # a forked helper (multiprocessing, a pool) outliving the driver
        os.write(1, f"child {os.getpid()}\\n".encode())  # after the fork handlers ran
        sys.stdin.read()
        os._exit(0)
    os.write(1, f"owner {folder}\\n".encode())  # one write each: lines never interleave
    sys.stdin.read()
    """
)


def test_a_child_the_driver_forked_does_not_keep_its_folder_alive(tmp_path: Path) -> None:
    owner = _start(FORKING_OWNER, tmp_path)
    assert owner.stdout is not None
    said = dict(owner.stdout.readline().split() for _ in range(2))  # in either order
    folder, child = said["owner"], said["child"]
    try:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        # The forked child still runs, but closed its copy of the lock: the folder goes.
        os.kill(int(child), 0)
        assert remove_stale_report_dirs(str(tmp_path)) == 1
        assert not Path(folder).exists()
    finally:
        os.kill(int(child), signal.SIGKILL)


def test_a_folder_whose_lock_file_could_not_be_made_is_not_left_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real tmpfs with room for one more inode: the folder is made, its lock file is not.
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,nr_inodes=2", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); needs root")
    try:
        monkeypatch.setattr(tempfile, "tempdir", str(disk))
        with pytest.raises(OSError, match="No space left"):
            ReportsDir().ensure()
        assert not [p for p in disk.iterdir() if p.name.startswith(PREFIX)]
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)

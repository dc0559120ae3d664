"""Run a coroutine to completion from synchronous code, with Ctrl-C, SIGTERM and SIGHUP handled.

:func:`run_sync` is what the spec's sync entry points (``run_grid_searches``,
``run_binary_searches``) call.

Signals (when called from the main thread with no loop running):

* SIGINT (Ctrl-C), SIGTERM or SIGHUP (the terminal or SSH session went away) cancel
  the main task. Cancellation reaches every running job: its whole process tree gets
  SIGTERM, then SIGKILL after the executor's grace period; its job.json says
  "cancelled"; queued jobs never start; finished jobs keep their results. Then, after
  a log line saying what happened, SIGINT raises :class:`KeyboardInterrupt` (the
  usual Python behaviour) and SIGTERM or SIGHUP raise ``SystemExit(128 + signal)``
  (143, 129: the shell convention), even if the coroutine swallowed the cancellation.
* A second signal skips the grace period: every job's process group gets SIGKILL now.
* A handler that was ``SIG_IGN`` (e.g. a ``nohup`` run) is left alone; previous
  handlers are restored afterwards.

With an event loop already running in this thread (Jupyter), the coroutine runs in
a fresh thread with its own loop; a KeyboardInterrupt in the caller (the notebook's
interrupt button) cancels it the same way, waits for the clean-up, then re-raises.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run_sync"]

logger = logging.getLogger("runner")

T = TypeVar("T")

_HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: What writing to a terminal that hung up raises.
_DEAD_TERMINAL = (errno.EIO, errno.EPIPE)


def _cancel_all_tasks(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler(
                {
                    "message": "unhandled exception during run_sync() shutdown",
                    "exception": task.exception(),
                    "task": task,
                }
            )


class _LoopRunner:
    """One event loop running one main task; cancellable from a signal or another thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.task: asyncio.Task[Any] | None = None
        self.received: list[int] = []

    def on_signal(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if self.received:
            # A second signal: no more grace. Cancelling every task interrupts the executors'
            # grace periods, which then SIGKILL their jobs' process groups at once.
            logger.warning("Received %s again: killing all jobs now (SIGKILL).", name)
            for task in asyncio.all_tasks(self.loop):
                task.cancel()
            return
        self.received.append(signum)
        logger.warning(
            "Received %s: cancelling all jobs. Running jobs get SIGTERM, then SIGKILL after "
            "their grace period; queued jobs will not start.",
            name,
        )
        if self.task is not None:
            self.task.cancel()

    def cancel_threadsafe(self) -> None:
        if self.task is not None:
            self.loop.call_soon_threadsafe(self.task.cancel)

    def run(self, coro: Coroutine[Any, Any, T], *, handle_signals: bool) -> T:
        loop = self.loop
        previous: dict[signal.Signals, Any] = {}
        try:
            asyncio.set_event_loop(loop)
            self.task = loop.create_task(coro)
            if handle_signals:
                for sig in _HANDLED_SIGNALS:
                    current = signal.getsignal(sig)
                    if current is signal.SIG_IGN:
                        continue
                    previous[sig] = current
                    loop.add_signal_handler(sig, self.on_signal, sig)
            try:
                result = loop.run_until_complete(self.task)
            except asyncio.CancelledError:
                if not self.received:
                    raise
                result = None
            except OSError as exc:
                # After a hang-up the terminal fails every write (EIO): a progress display
                # that says goodbye to it fails too. That is the hang-up, already handled.
                if not (self.received == [signal.SIGHUP] and exc.errno in _DEAD_TERMINAL):
                    raise
                result = None
            if self.received:
                signum = self.received[0]
                logger.warning(
                    "Stopped by %s: all jobs were cancelled and their processes killed.",
                    signal.Signals(signum).name,
                )
                if signum == signal.SIGINT:
                    raise KeyboardInterrupt
                raise SystemExit(128 + signum)
            return result
        finally:
            try:
                for sig, handler in previous.items():
                    loop.remove_signal_handler(sig)
                    signal.signal(sig, handler)
                _cancel_all_tasks(loop)
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                asyncio.set_event_loop(None)
                loop.close()


def _run_in_thread(coro: Coroutine[Any, Any, T]) -> T:
    runner = _LoopRunner()
    outcome: dict[str, Any] = {}

    # Waiting on an Event, not Thread.join(): a join interrupted by KeyboardInterrupt can
    # leave the thread looking finished (CPython gh-90882), and the second wait, the one
    # that lets the jobs be cancelled cleanly, would then return at once.
    finished = threading.Event()

    def target() -> None:
        try:
            outcome["value"] = runner.run(coro, handle_signals=False)
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc
        finally:
            finished.set()

    thread = threading.Thread(target=target, name="runner-run-sync", daemon=True)
    # The running loop may have its own SIGINT handler (asyncio.run's cancels its main
    # task, which is blocked in this join and would only see it when the sweep ends):
    # while we wait, Ctrl-C must raise here, so the jobs are cancelled now.
    previous_handler = None
    if threading.current_thread() is threading.main_thread():
        current = signal.getsignal(signal.SIGINT)
        if current not in (signal.SIG_IGN, signal.default_int_handler):
            previous_handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    thread.start()
    try:
        try:
            finished.wait()  # interruptible by KeyboardInterrupt on POSIX
        finally:
            if previous_handler is not None:
                signal.signal(signal.SIGINT, previous_handler)
    except KeyboardInterrupt:
        logger.warning(
            "Interrupted: cancelling all jobs (running jobs are terminated, then killed)."
        )
        runner.cancel_threadsafe()
        finished.wait()
        thread.join()
        raise
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion and return its result, from synchronous code.

    Works in a plain script (a fresh event loop in this thread, with Ctrl-C, SIGTERM
    and SIGHUP cancelling every job cleanly; see the module docstring) and where a
    loop is already running in this thread, e.g. Jupyter (a fresh thread).

    Raises:
        KeyboardInterrupt: After SIGINT, once every job was killed.
        SystemExit: With code 143 after SIGTERM (129 after SIGHUP), once every job
            was killed.

    Example:
        >>> async def answer():
        ...     return 42
        >>> run_sync(answer())
        42
    """
    # Decided outside the ``except``: an error raised while handling the probe's
    # RuntimeError would carry it as context ("During handling of the above exception").
    try:
        asyncio.get_running_loop()
        loop_running = True
    except RuntimeError:
        loop_running = False
    if loop_running:
        return _run_in_thread(coro)
    in_main = threading.current_thread() is threading.main_thread()
    return _LoopRunner().run(coro, handle_signals=in_main)

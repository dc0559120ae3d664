"""Which front end started a sweep (the Python API or the ``runner`` command), so that
messages name the options its user actually types: ``resume=True`` or ``--resume``.

The API is the default; the CLI sets its own for the duration of a command with
:func:`using_front_end`. A :class:`contextvars.ContextVar` carries it, so the asyncio
tasks a sweep starts see the value of the call that started them.

Example:
    >>> front_end().resume
    'resume=True'
    >>> with using_front_end(CLI):
    ...     front_end().resume
    '--resume'
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Iterator

__all__ = ["API", "CLI", "FrontEnd", "front_end", "using_front_end"]


@dataclasses.dataclass(frozen=True)
class FrontEnd:
    """How one front end spells the options a message may suggest."""

    name: str
    #: Reuse the jobs that already finished with the same config.
    resume: str
    #: Run on CPU only.
    cpu_only: str
    #: How many jobs run at once on CPU.
    cpu_slots: str
    #: Leave out the GPUs that other processes already use.
    skip_busy_gpus: str
    #: A threshold search's range (``str.format`` with prop, lo, hi).
    search_range: str = "range=({lo}, {hi})"
    #: Test a threshold search's range ends in its first round.
    test_range_ends: str = "test_range_ends=True"
    #: Repetitions per tested value (``str.format`` with k).
    repetitions: str = "repetitions={k}"
    #: Where the repetitions (seeds) come from.
    repetition_pool: str = "sweep_props (e.g. seeds)"
    #: The probabilistic search's job budget and a search's precision, as an option is
    #: named in a sentence ("raise max_jobs").
    max_jobs: str = "max_jobs"
    precision: str = "precision"
    #: Classic bisection, the threshold search's default method.
    bisection: str = "method='bisection'"
    #: Whether the front end prints its own end-of-sweep message (the CLI does, after
    #: its results table); the progress display prints it otherwise.
    prints_end_message: bool = False

    def setting(self, option: str, value: object) -> str:
        """An option set to a value as this front end writes it: ``max_jobs=60`` or
        ``--max-jobs 60``.

        Example:
            >>> API.setting(API.max_jobs, 60), CLI.setting(CLI.max_jobs, 60)
            ('max_jobs=60', '--max-jobs 60')
        """
        return f"{option} {value}" if option.startswith("--") else f"{option}={value}"


API = FrontEnd(
    name="api",
    resume="resume=True",
    cpu_only="max_gpus=0",
    cpu_slots="cpu_slots=N",
    skip_busy_gpus="skip_busy_gpus=True",
)
CLI = FrontEnd(
    name="cli",
    resume="--resume",
    cpu_only="--gpus 0",
    cpu_slots="--cpu-slots N",
    skip_busy_gpus="--skip-busy-gpus",
    search_range="{prop}={lo}:{hi}",
    test_range_ends="--test-range-ends yes",
    repetitions="--repetitions {k}",
    repetition_pool="--seeds",
    max_jobs="--max-jobs",
    precision="--precision",
    bisection="--method bisection",
    prints_end_message=True,
)

_CURRENT: contextvars.ContextVar[FrontEnd] = contextvars.ContextVar("runner_front_end", default=API)


def front_end() -> FrontEnd:
    """The front end of the sweep running in this context (the API unless the CLI said so)."""
    return _CURRENT.get()


@contextlib.contextmanager
def using_front_end(which: FrontEnd) -> Iterator[FrontEnd]:
    """Make ``which`` the front end for the code run inside the ``with`` block."""
    token = _CURRENT.set(which)
    try:
        yield which
    finally:
        _CURRENT.reset(token)

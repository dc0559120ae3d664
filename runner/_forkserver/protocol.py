"""The messages between the driver, the fork server and its pre-forked children.

One message per datagram of a ``SOCK_SEQPACKET`` unix socket, encoded here and only
here (:func:`encode`, :func:`decode`): a JSON object whose ``"type"`` names the message
class, so neither end guesses a message's kind from the keys it happens to carry.

Driver -> server:

* :class:`Fork`: start the job in ``job_dir``; its log's descriptor travels with it
  (``SCM_RIGHTS``). Answered :class:`Started` once the child leads its own session (so
  the driver can kill its process group at once), or :class:`ForkFailed`; later
  :class:`Exited` once the server has reaped it. The server forwards the same bytes to
  a pre-forked child, which decodes them the same way.
* :class:`Pool`: keep ``size`` children pre-forked (the scheduler's slots). Not answered.
* :class:`Ping`: answered :class:`Pong` once the server's imports are done and its pool
  is full.
* :class:`Preload`: import these modules for every later child (warm starts). Answered
  :class:`Preloaded`, which names the modules imported or the problem that makes this
  server unfit to fork from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

#: Most bytes one message may take: a Fork's job environment is the bulk of it. The
#: driver spawns a job whose request is larger.
MAX_MESSAGE = 1 << 20

#: Interpreter variables a forked job applies itself (its standard streams): the fork
#: server starts without them, and each job's value, or their absence, is honoured.
HANDLED_PYTHON_ENV = ("PYTHONUNBUFFERED", "PYTHONIOENCODING")


class ProtocolError(ValueError):
    """A datagram that is not one of this protocol's messages."""


@dataclass(frozen=True)
class Message:
    """Base of every message; ``TYPE`` is its tag on the wire."""

    TYPE: ClassVar[str] = ""


@dataclass(frozen=True)
class Fork(Message):
    """Driver -> server (and server -> pre-forked child): run one job."""

    TYPE: ClassVar[str] = "fork"
    id: int
    job_dir: str
    cwd: str
    env: dict[str, str]


@dataclass(frozen=True)
class Pool(Message):
    """Driver -> server: keep ``size`` children forked ahead of need."""

    TYPE: ClassVar[str] = "pool"
    id: int
    size: int


@dataclass(frozen=True)
class Ping(Message):
    """Driver -> server: answer once ready (imports done, pool full)."""

    TYPE: ClassVar[str] = "ping"
    id: int


@dataclass(frozen=True)
class Preload(Message):
    """Driver -> server: import ``modules`` (in order) before forking any child."""

    TYPE: ClassVar[str] = "preload"
    id: int
    modules: list[str]


@dataclass(frozen=True)
class Pong(Message):
    """Server -> driver: the answer to :class:`Ping`."""

    TYPE: ClassVar[str] = "pong"
    id: int


@dataclass(frozen=True)
class Started(Message):
    """Server -> driver: the job of request ``id`` runs as ``pid``, leader of its session."""

    TYPE: ClassVar[str] = "started"
    id: int
    pid: int


@dataclass(frozen=True)
class ForkFailed(Message):
    """Server -> driver: request ``id`` could not be started (the server lives on)."""

    TYPE: ClassVar[str] = "fork_failed"
    id: int
    error: str


@dataclass(frozen=True)
class Exited(Message):
    """Server -> driver: job process ``pid`` ended; ``rc`` as in :mod:`subprocess` (-N: signal N)."""

    TYPE: ClassVar[str] = "exited"
    pid: int
    rc: int


@dataclass(frozen=True)
class Preloaded(Message):
    """Server -> driver: the answer to :class:`Preload`.

    ``modules``: the top-level packages now imported for the children. ``problem``:
    None when the server is fit to fork from; else why not (it then forks nothing more).
    """

    TYPE: ClassVar[str] = "preloaded"
    id: int
    modules: list[str] = field(default_factory=list)
    problem: str | None = None


_TYPES: dict[str, type[Message]] = {
    cls.TYPE: cls for cls in (Fork, Pool, Ping, Preload, Pong, Started, ForkFailed, Exited, Preloaded)
}


def encode(message: Message) -> bytes:
    """The datagram that carries ``message``."""
    # The fields as they are (every one is JSON already): dataclasses.asdict would deep-copy
    # a Fork's environment, at about 15 times the cost of the encoding itself.
    return json.dumps({"type": message.TYPE, **vars(message)}).encode()


def decode(data: bytes) -> Message:
    """The message a datagram carries.

    Raises:
        ProtocolError: ``data`` is not one of this protocol's messages.

    Example:
        >>> decode(encode(Exited(pid=12, rc=-9)))
        Exited(pid=12, rc=-9)
    """
    try:
        fields: Any = json.loads(data)
        cls = _TYPES[fields.pop("type")]
        return cls(**fields)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ProtocolError(f"not a fork server message: {data[:200]!r} ({exc})") from exc

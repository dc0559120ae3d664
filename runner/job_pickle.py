"""``job.pkl``: one job's own part, with what its search shares stored once beside it.

A search's jobs all run the same function of the same search config, whose sweep
lists grow with the sweep; pickled into every job, that config made ``job.pkl``
grow with the sweep and the disk with its square (369 KB a job at 100,000 jobs).
Here a job can name a :class:`SharedObject` (the search config): it is pickled
once, into ``<search folder>/.runner/shared-<digest>.pkl`` (content-addressed, so a
changed config gets a new file and an old job never loads the wrong one), and each
``job.pkl`` holds a reference to it instead, by a path relative to the job folder
(a search folder copied elsewhere still runs) and by its absolute path.

The worker loads a job with :func:`load_job`; a ``job.pkl`` written before this
layout (the whole job, no references) loads unchanged.

Example:
    >>> import os, tempfile
    >>> from runner.jobs import Job
    >>> search = tempfile.mkdtemp()
    >>> shared = SharedObject({"sweep": list(range(1000))}, search)
    >>> job = Job(run_fn=len, config=shared.obj["sweep"], base_dir=f"{search}/job", shared=shared)
    >>> os.makedirs(job.base_dir)
    >>> with open(f"{job.base_dir}/job.pkl", "wb") as f:
    ...     _ = f.write(dump_job(job))
    >>> load_job(job.base_dir).run()
    1000
"""

from __future__ import annotations

import io
import os
import pickle
import types
from typing import Any

from runner.job_folder import JOB_PKL, atomic_write_bytes

__all__ = ["SHARED_DIR", "SharedObject", "dump_job", "load_job"]

#: The folder, inside a search folder, that holds what its jobs share.
SHARED_DIR = ".runner"
_TAG = "runner.shared/1"


class SharedObject:
    """An object that many jobs reference, pickled once into ``<folder>/.runner/``.

    Args:
        obj: The object (a search config; its methods are the jobs' run functions).
        folder: The search folder.
    """

    def __init__(self, obj: Any, folder: str) -> None:
        self.obj = obj
        self.folder = os.path.abspath(folder)
        self._path: str | None = None

    def path(self) -> str:
        """The shared file's path, written on first use (once per object and process).

        Raises:
            Exception: Whatever pickling the object raised; OSError if it can't be written.
        """
        if self._path is None:
            import hashlib  # here: job processes import this module, only the driver hashes

            import cloudpickle

            data = cloudpickle.dumps(self.obj)
            digest = hashlib.sha256(data).hexdigest()[:16]
            path = os.path.join(self.folder, SHARED_DIR, f"shared-{digest}.pkl")
            if not os.path.exists(path):
                os.makedirs(os.path.dirname(path), exist_ok=True)
                # fsync: the workers of a cluster read it next, from other machines.
                atomic_write_bytes(path, data, fsync=True)
            self._path = path
        return self._path


def _job_pickler(file: io.BytesIO, shared: SharedObject, job_dir: str) -> Any:
    """A cloudpickle pickler that writes ``shared`` (and its methods) as references.

    Built on first use: a job's process imports this module to load its job, which needs
    only :mod:`pickle` (the fork server preloads it, and cloudpickle only where the
    job's ``sys.path`` finds the same one).
    """
    import cloudpickle

    class JobPickler(cloudpickle.CloudPickler):  # type: ignore[misc,unused-ignore]
        def persistent_id(self, obj: Any) -> Any:
            return _shared_reference(obj, shared, job_dir)

    return JobPickler(file)


def _shared_reference(obj: Any, shared_object: SharedObject, job_dir: str) -> Any:
    """The reference that stands for ``obj`` in job.pkl, or None to pickle it as usual."""
    shared = shared_object.obj
    if obj is shared:
        attribute = None
    elif (
        isinstance(obj, types.MethodType)
        and obj.__self__ is shared
        and getattr(shared, obj.__func__.__name__, None) == obj
    ):
        # The run function, by name rather than its code. A method the name does not
        # reach (a decorator without functools.wraps, an alias) is pickled as usual,
        # its object still by reference.
        attribute = obj.__func__.__name__
    else:
        return None
    path = shared_object.path()
    return (_TAG, os.path.relpath(path, job_dir), path, attribute)


def dump_job(job: Any) -> bytes:
    """``job`` pickled for its ``job.pkl``: by reference to its ``shared`` object, if it has one.

    Raises:
        Exception: Whatever pickling raised (an unpicklable config or function).
    """
    import cloudpickle

    shared = getattr(job, "shared", None)
    if not isinstance(shared, SharedObject):
        return bytes(cloudpickle.dumps(job))
    job_dir = os.path.dirname(os.path.abspath(str(job.get_out_file())))
    buffer = io.BytesIO()
    _job_pickler(buffer, shared, job_dir).dump(job)
    return buffer.getvalue()


#: Shared objects this process loaded, by absolute path: a job loads its search's once.
_LOADED: dict[str, Any] = {}


class _JobUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedReader, job_dir: str) -> None:
        super().__init__(file)
        self._job_dir = job_dir

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) == 4 and pid[0] == _TAG):
            raise pickle.UnpicklingError(f"job.pkl references {pid!r}, which Runner did not write")
        _, relative, absolute, attribute = pid
        candidates = [os.path.normpath(os.path.join(self._job_dir, relative)), absolute]
        for path in candidates:
            value = _LOADED.get(path)
            if value is None:
                try:
                    with open(path, "rb") as f:
                        value = _LOADED[path] = pickle.load(f)
                except FileNotFoundError:
                    continue
            return value if attribute is None else getattr(value, attribute)
        raise FileNotFoundError(
            f"{os.path.join(self._job_dir, JOB_PKL)} needs its search's shared file, found at "
            f"neither {candidates[0]} nor {candidates[1]}; copy the search folder whole "
            f"(with its {SHARED_DIR}/ folder), not a job folder alone"
        )


def load_job(job_dir: str) -> Any:
    """The job in ``<job_dir>/job.pkl``, its shared parts loaded from their files.

    Raises:
        FileNotFoundError: job.pkl, or the shared file it names, is missing.
        Exception: Whatever unpickling raised (e.g. a module the job needs is missing).
    """
    with open(os.path.join(job_dir, JOB_PKL), "rb") as f:
        return _JobUnpickler(f, os.path.abspath(job_dir)).load()

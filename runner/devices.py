"""Which GPUs this machine offers a sweep, and why.

Detection order (the first source that answers wins):

1. ``CUDA_VISIBLE_DEVICES`` when it is set. Its entries (indices, ``GPU-<uuid>``,
   ``MIG-...``) are kept verbatim, because that is exactly what a child must be
   given to see the same device. An empty value, ``-1`` or ``NoDevFiles`` means
   "no GPU".
2. NVML (``pynvml`` from nvidia-ml-py): the driver's device count.
3. ``torch.cuda.device_count()``, only when torch is installed and nothing else
   answered (importing torch costs seconds, so it is the last resort).
4. None: jobs then run on CPU slots.

Example:
    >>> info = detect_devices(environ={"CUDA_VISIBLE_DEVICES": "0,GPU-1a2b"})
    >>> info.source, [d.cuda_id for d in info.devices]
    ('CUDA_VISIBLE_DEVICES', ['0', 'GPU-1a2b'])
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from runner.errors import DeviceConfigError

__all__ = [
    "CPU_DEVICE",
    "DEFAULT_BUSY_MEMORY_THRESHOLD_MIB",
    "Device",
    "DeviceInfo",
    "detect_devices",
    "nvml_memory_used_mib",
    "select_devices",
]

logger = logging.getLogger("runner")

#: A GPU counts as busy when other processes hold more than this much of its memory.
#: A bare CUDA context takes ~300-500 MiB, so 1 GiB means "someone is really using it".
DEFAULT_BUSY_MEMORY_THRESHOLD_MIB = 1024

_NO_GPU_VALUES = frozenset({"", "-1", "nodevfiles"})


@dataclasses.dataclass(frozen=True)
class Device:
    """One schedulable device: a ``CUDA_VISIBLE_DEVICES`` entry, or the CPU (``cuda_id=None``).

    Example:
        >>> Device("3").gpu_id, Device("GPU-abc").gpu_id, Device(None).gpu_id
        (3, 'GPU-abc', None)
    """

    #: What the child's ``CUDA_VISIBLE_DEVICES`` is set to; ``None`` for the CPU pseudo-device.
    cuda_id: str | None

    @property
    def is_cpu(self) -> bool:
        """Whether this is the CPU pseudo-device (children see no GPU)."""
        return self.cuda_id is None

    @property
    def visible_devices(self) -> str:
        """The child's ``CUDA_VISIBLE_DEVICES`` value: the id, or ``""`` to hide every GPU."""
        return "" if self.cuda_id is None else self.cuda_id

    @property
    def gpu_id(self) -> int | str | None:
        """The id as the spec's ``GPUJobResult.gpu_id`` reports it: int for indices, else verbatim."""
        if self.cuda_id is None:
            return None
        return int(self.cuda_id) if self.cuda_id.isdigit() else self.cuda_id

    def __str__(self) -> str:
        return "cpu" if self.cuda_id is None else self.cuda_id


#: The single pseudo-device of a machine without GPUs.
CPU_DEVICE = Device(None)


@dataclasses.dataclass(frozen=True)
class DeviceInfo:
    """The devices found and why: ``source`` is "CUDA_VISIBLE_DEVICES", "NVML", "torch" or "none"."""

    devices: tuple[Device, ...]
    source: str
    #: One human sentence explaining the choice (what ``runner gpus`` prints).
    reason: str
    #: Devices dropped by ``skip_busy_gpus``, each with the reason.
    skipped: tuple[tuple[Device, str], ...] = ()

    @property
    def has_gpus(self) -> bool:
        """Whether at least one GPU is available."""
        return bool(self.devices)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able view (what ``runner gpus --json`` can print)."""
        return {
            "source": self.source,
            "reason": self.reason,
            "devices": [str(d) for d in self.devices],
            "skipped": [{"device": str(d), "why": why} for d, why in self.skipped],
        }


#: What CUDA accepts in CUDA_VISIBLE_DEVICES: an index, a GPU UUID (or its prefix), a MIG id.
_VALID_ID = re.compile(r"\d+|GPU-[0-9A-Fa-f-]+|MIG-[0-9A-Za-z/_-]+")


def _parse_visible(value: str) -> list[str]:
    """The ids of ``CUDA_VISIBLE_DEVICES``, checked as CUDA would read them.

    Raises:
        DeviceConfigError: An id CUDA would not accept (it silently stops reading at the
            first one, so the jobs would see fewer GPUs than listed), or one listed twice
            (two slots' jobs would share one GPU, beyond ``simultaneous_jobs_per_gpu``).
    """
    # An empty entry (a trailing comma) is simply dropped, as CUDA does.
    entries = [e for e in (part.strip() for part in value.split(",")) if e]
    for i, entry in enumerate(entries):
        if not _VALID_ID.fullmatch(entry):
            seen = ",".join(entries[:i])
            raise DeviceConfigError(
                f"CUDA_VISIBLE_DEVICES={value!r}: {entry!r} is not a device id (an index such "
                "as 0, a GPU-<uuid> or a MIG-<id>); CUDA stops reading at it, so jobs would "
                f"see {'only ' + repr(seen) if seen else 'no GPU'}. List only valid ids, e.g. "
                "CUDA_VISIBLE_DEVICES=0,1, or set it to '' (or -1) for no GPU."
            )
    duplicates = sorted({e for e in entries if entries.count(e) > 1})
    if duplicates:
        raise DeviceConfigError(
            f"CUDA_VISIBLE_DEVICES={value!r} lists {', '.join(map(repr, duplicates))} more than "
            "once, which would put two slots' jobs on one GPU; list each device once and set "
            "simultaneous_jobs_per_gpu (--jobs-per-gpu) to run several jobs on one GPU."
        )
    return entries


def _nvml_device_count() -> tuple[int | None, str]:
    """The NVML device count, or ``None`` and why not. Never raises: no driver is a normal case."""
    try:
        import pynvml  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except Exception as exc:  # ImportError, or a broken install
        return None, f"pynvml is not importable ({exc.__class__.__name__}: {exc})"
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return None, f"NVML could not initialise ({exc})"
    try:
        return int(pynvml.nvmlDeviceGetCount()), "NVML answered"
    except Exception as exc:
        return None, f"NVML could not count devices ({exc})"
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass


def _torch_device_count() -> tuple[int | None, str]:
    if importlib.util.find_spec("torch") is None:
        return None, "torch is not installed"
    try:
        import torch  # heavy: only reached when neither CUDA_VISIBLE_DEVICES nor NVML answered

        return int(torch.cuda.device_count()), "torch answered"
    except Exception as exc:
        return None, f"torch.cuda.device_count() failed ({exc})"


def detect_devices(*, environ: Mapping[str, str] | None = None) -> DeviceInfo:
    """Find the GPUs this process may use, and say which source answered.

    Args:
        environ: The environment to read ``CUDA_VISIBLE_DEVICES`` from (default ``os.environ``).

    Returns:
        A :class:`DeviceInfo`; ``devices`` is empty when there is no GPU.

    Raises:
        DeviceConfigError: ``CUDA_VISIBLE_DEVICES`` holds an id CUDA would not accept, or
            lists one twice.

    Example:
        >>> detect_devices(environ={"CUDA_VISIBLE_DEVICES": ""}).reason
        'CUDA_VISIBLE_DEVICES is set to an empty value: no GPU'
    """
    env = os.environ if environ is None else environ
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        if visible.strip().lower() in _NO_GPU_VALUES:
            return DeviceInfo(
                (),
                "CUDA_VISIBLE_DEVICES",
                f"CUDA_VISIBLE_DEVICES is set to {visible!r}: no GPU"
                if visible.strip()
                else "CUDA_VISIBLE_DEVICES is set to an empty value: no GPU",
            )
        ids = _parse_visible(visible)
        return DeviceInfo(
            tuple(Device(i) for i in ids),
            "CUDA_VISIBLE_DEVICES",
            f"CUDA_VISIBLE_DEVICES={visible!r} lists {len(ids)} device(s)",
        )
    count, why_not_nvml = _nvml_device_count()
    if count is not None:
        return DeviceInfo(
            tuple(Device(str(i)) for i in range(count)),
            "NVML",
            f"CUDA_VISIBLE_DEVICES is unset; NVML reports {count} device(s)",
        )
    count, why_not_torch = _torch_device_count()
    if count is not None:
        return DeviceInfo(
            tuple(Device(str(i)) for i in range(count)),
            "torch",
            f"CUDA_VISIBLE_DEVICES is unset, {why_not_nvml}; torch reports {count} device(s)",
        )
    return DeviceInfo(
        (),
        "none",
        f"CUDA_VISIBLE_DEVICES is unset, {why_not_nvml}, and {why_not_torch}: no GPU",
    )


def nvml_memory_used_mib(devices: Sequence[Device]) -> dict[Device, float | None] | None:
    """Memory in use (MiB) per device, by NVML; ``None`` when NVML is unavailable.

    A device maps to its NVML handle by index (``"2"``) or UUID (``"GPU-..."``); MIG
    instances and anything unmatched map to ``None`` (not checked).
    """
    try:
        import pynvml
    except Exception:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:
        return None
    try:
        used: dict[Device, float | None] = {}
        for dev in devices:
            cid = dev.cuda_id
            if cid is None or cid.startswith("MIG"):
                used[dev] = None
                continue
            try:
                if cid.isdigit():
                    handle = pynvml.nvmlDeviceGetHandleByIndex(int(cid))
                else:
                    handle = pynvml.nvmlDeviceGetHandleByUUID(cid)
                used[dev] = pynvml.nvmlDeviceGetMemoryInfo(handle).used / (1024 * 1024)
            except Exception as exc:
                logger.debug("NVML could not read memory of device %s: %s", cid, exc)
                used[dev] = None
        return used
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass


MemoryUsedFn = Callable[[Sequence[Device]], "Mapping[Device, float | None] | None"]


def select_devices(
    *,
    max_gpus: int | None = None,
    skip_busy_gpus: bool = False,
    busy_memory_threshold_mib: float = DEFAULT_BUSY_MEMORY_THRESHOLD_MIB,
    environ: Mapping[str, str] | None = None,
    memory_used: MemoryUsedFn | None = None,
) -> DeviceInfo:
    """Detect devices, drop busy ones if asked, then keep the first ``max_gpus``.

    Arguments are assumed validated (the scheduler does it).

    Args:
        max_gpus: Keep at most this many devices (``None``: all; ``0``: none, i.e. CPU).
        skip_busy_gpus: Drop devices on which more than ``busy_memory_threshold_mib`` is in use.
        busy_memory_threshold_mib: The busy threshold in MiB.
        environ: The environment to read (default ``os.environ``).
        memory_used: ``devices -> {device: MiB or None}`` or ``None`` if unknown;
            defaults to :func:`nvml_memory_used_mib`.

    Example:
        >>> info = select_devices(max_gpus=2, environ={"CUDA_VISIBLE_DEVICES": "4,5,6"})
        >>> [str(d) for d in info.devices]
        ['4', '5']
    """
    info = detect_devices(environ=environ)
    devices = list(info.devices)
    skipped: list[tuple[Device, str]] = []
    reason = info.reason
    if skip_busy_gpus and devices and max_gpus != 0:
        used = (memory_used or nvml_memory_used_mib)(devices)
        if used is None:
            logger.warning(
                "skip_busy_gpus=True but NVML is unavailable, so GPU memory use can't be "
                "measured; keeping all %d device(s). Install nvidia-ml-py and check the driver "
                "to enable the check.",
                len(devices),
            )
        else:
            kept = []
            for dev in devices:
                mib = used.get(dev)
                if mib is None:
                    logger.debug(
                        "Device %s: memory use unknown (MIG or unmatched); not checked", dev
                    )
                    kept.append(dev)
                elif mib > busy_memory_threshold_mib:
                    why = f"{mib:.0f} MiB in use > busy_memory_threshold_mib={busy_memory_threshold_mib}"
                    logger.warning("Skipping busy GPU %s: %s", dev, why)
                    skipped.append((dev, why))
                else:
                    kept.append(dev)
            devices = kept
            if skipped:
                reason += f"; skipped {len(skipped)} busy device(s)"
    if max_gpus == 0:
        devices = []
        reason += "; max_gpus=0 asks for CPU"
    elif max_gpus is not None and len(devices) > max_gpus:
        devices = devices[:max_gpus]
        reason += f"; max_gpus={max_gpus} keeps the first {max_gpus}"
    return DeviceInfo(tuple(devices), info.source, reason, tuple(skipped))

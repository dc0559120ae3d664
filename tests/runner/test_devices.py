"""Device detection: CUDA_VISIBLE_DEVICES, NVML (absent here, for real), busy-GPU filtering."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import pytest

from runner.devices import CPU_DEVICE, Device, detect_devices, nvml_memory_used_mib, select_devices
from runner.errors import DeviceConfigError


def _nvml_works() -> bool:
    try:
        import pynvml

        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
        return True
    except Exception:
        return False


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0,1,2,3", ["0", "1", "2", "3"]),
        ("3, 1", ["3", "1"]),
        ("0,1,", ["0", "1"]),
        ("GPU-8d2a6c4e-1f7b-4c1a-9e3f-0a1b2c3d4e5f", ["GPU-8d2a6c4e-1f7b-4c1a-9e3f-0a1b2c3d4e5f"]),
        ("MIG-GPU-8d2a6c4e/1/0,MIG-4f1c", ["MIG-GPU-8d2a6c4e/1/0", "MIG-4f1c"]),
    ],
)
def test_cuda_visible_devices_entries_pass_through_verbatim(
    value: str, expected: list[str]
) -> None:
    info = detect_devices(environ={"CUDA_VISIBLE_DEVICES": value})
    assert info.source == "CUDA_VISIBLE_DEVICES"
    assert [d.cuda_id for d in info.devices] == expected
    assert repr(value) in info.reason


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("0,0", "'0' more than once"),
        ("1, 2,1", "'1' more than once"),
        ("garbage!!", "jobs would see no GPU"),
        ("0,-1,1", "jobs would see only '0'"),
        ("0,gpu1", "'gpu1' is not a device id"),
    ],
)
def test_cuda_visible_devices_that_cuda_would_misread_are_refused(value: str, needle: str) -> None:
    with pytest.raises(DeviceConfigError) as info:
        detect_devices(environ={"CUDA_VISIBLE_DEVICES": value})
    message = str(info.value)
    assert needle in message and repr(value) in message
    assert "simultaneous_jobs_per_gpu" in message or "CUDA_VISIBLE_DEVICES=0,1" in message  # the fix


@pytest.mark.parametrize("value", ["", "  ", "-1", "NoDevFiles"])
def test_cuda_visible_devices_meaning_no_gpu(value: str) -> None:
    info = detect_devices(environ={"CUDA_VISIBLE_DEVICES": value})
    assert info.devices == () and not info.has_gpus
    assert info.source == "CUDA_VISIBLE_DEVICES"
    assert "no GPU" in info.reason


@pytest.mark.skipif(_nvml_works(), reason="a real NVML answers on this machine")
def test_without_cuda_visible_devices_and_without_nvml_finds_none() -> None:
    # The real NVML-absent path: pynvml is installed, but there is no driver.
    info = detect_devices(environ={})
    assert info.source in ("none", "torch")
    assert "NVML" in info.reason
    assert nvml_memory_used_mib([Device("0")]) is None


def test_gpu_id_is_int_for_indices_and_verbatim_otherwise() -> None:
    assert Device("2").gpu_id == 2
    assert Device("GPU-abc").gpu_id == "GPU-abc"
    assert Device("MIG-1/2/3").gpu_id == "MIG-1/2/3"
    assert CPU_DEVICE.gpu_id is None and CPU_DEVICE.is_cpu
    assert CPU_DEVICE.visible_devices == "" and str(CPU_DEVICE) == "cpu"


def test_max_gpus_keeps_the_first_n() -> None:
    env = {"CUDA_VISIBLE_DEVICES": "5,6,7"}
    assert [str(d) for d in select_devices(max_gpus=2, environ=env).devices] == ["5", "6"]
    assert len(select_devices(max_gpus=10, environ=env).devices) == 3
    info = select_devices(max_gpus=0, environ=env)
    assert info.devices == () and "max_gpus=0" in info.reason


def _fake_memory(values: Mapping[str, float | None]):
    """A plain 'memory used per device' function standing in for NVML (which can't run here)."""

    def memory_used(devices: Sequence[Device]) -> dict[Device, float | None]:
        return {d: values.get(str(d)) for d in devices}

    return memory_used


def test_skip_busy_gpus_drops_devices_above_the_threshold(caplog: pytest.LogCaptureFixture) -> None:
    env = {"CUDA_VISIBLE_DEVICES": "0,1,2,MIG-x/1/0"}
    with caplog.at_level(logging.DEBUG, logger="runner"):
        info = select_devices(
            skip_busy_gpus=True,
            busy_memory_threshold_mib=1000,
            environ=env,
            memory_used=_fake_memory({"0": 10.0, "1": 30000.0, "2": 999.0, "MIG-x/1/0": None}),
        )
    assert [str(d) for d in info.devices] == ["0", "2", "MIG-x/1/0"]
    assert [str(d) for d, _ in info.skipped] == ["1"]
    assert "30000 MiB" in info.skipped[0][1]
    assert any("Skipping busy GPU 1" in r.getMessage() for r in caplog.records)
    assert any(
        "MIG-x/1/0" in r.getMessage() and "not checked" in r.getMessage() for r in caplog.records
    )


def test_skip_busy_applies_before_max_gpus() -> None:
    info = select_devices(
        max_gpus=2,
        skip_busy_gpus=True,
        environ={"CUDA_VISIBLE_DEVICES": "0,1,2"},
        memory_used=_fake_memory({"0": 5000.0, "1": 0.0, "2": 0.0}),
    )
    assert [str(d) for d in info.devices] == ["1", "2"]


def test_skip_busy_without_memory_information_keeps_all_and_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="runner"):
        info = select_devices(
            skip_busy_gpus=True,
            environ={"CUDA_VISIBLE_DEVICES": "0,1"},
            memory_used=lambda devs: None,
        )
    assert len(info.devices) == 2
    assert sum("NVML is unavailable" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.skipif(_nvml_works(), reason="a real NVML answers on this machine")
def test_skip_busy_with_the_real_absent_nvml_keeps_all(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="runner"):
        info = select_devices(skip_busy_gpus=True, environ={"CUDA_VISIBLE_DEVICES": "0,1"})
    assert len(info.devices) == 2
    assert any("NVML is unavailable" in r.getMessage() for r in caplog.records)


def test_as_dict_is_json_able() -> None:
    import json

    info = select_devices(environ={"CUDA_VISIBLE_DEVICES": "0,GPU-a"})
    assert json.loads(json.dumps(info.as_dict()))["devices"] == ["0", "GPU-a"]

"""What a benchmark ran on, by name: the CPU's model and the GPU's (a result names its device)."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux; platform's guess elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool | None:
    """Whether the CPU has bf16 instructions (x86 avx512_bf16 / amx_bf16, Arm bf16), from
    /proc/cpuinfo's flags; None where they cannot be read. Without them PyTorch emulates bf16."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return None
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"}) if flags else None


def describe_device(device: str = "cpu", threads: int | None = None) -> str:
    """"cpu (<model>), torch threads=N" or "cuda (<GPU name>)"."""
    if str(device).startswith("cuda"):
        import torch

        return f"cuda ({torch.cuda.get_device_name(torch.device(device))})"
    return f"cpu ({cpu_model()})" + (f", torch threads={threads}" if threads else "")

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


def describe_device(device: str = "cpu", threads: int | None = None) -> str:
    """"cpu (<model>), torch threads=N" or "cuda (<GPU name>)"."""
    if str(device).startswith("cuda"):
        import torch

        return f"cuda ({torch.cuda.get_device_name(torch.device(device))})"
    return f"cpu ({cpu_model()})" + (f", torch threads={threads}" if threads else "")

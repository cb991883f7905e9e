"""Peak-memory measurement for training runs.

CUDA: ``torch.cuda.max_memory_allocated`` (tensor memory only).
CPU: the process's peak resident set size (``VmHWM`` in ``/proc/self/status``),
reset by writing "5" to ``/proc/self/clear_refs``.  RSS follows live tensors
only if the allocator returns freed blocks to the OS; run with
``MALLOC_MMAP_THRESHOLD_`` set (the benchmark does) so large tensors are
mmap-ed and unmapped on free.  CPU figures are process-wide: they include
everything else living in the process.
"""

from __future__ import annotations

from pathlib import Path

import torch

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def current_rss_bytes() -> int | None:
    kib = _status_kib("VmRSS")
    return None if kib is None else kib * 1024


def peak_rss_bytes() -> int | None:
    kib = _status_kib("VmHWM")
    return None if kib is None else kib * 1024


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS; False where the kernel does not allow it."""
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


class MemoryMeter:
    """Peak memory of a device since the last ``reset()``, in bytes (0 when unknown)."""

    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self.can_reset = True

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    def reset(self) -> None:
        if self.is_cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self.can_reset = reset_peak_rss()

    def peak(self) -> int:
        if self.is_cuda:
            return int(torch.cuda.max_memory_allocated(self.device))
        return peak_rss_bytes() or 0

    def current(self) -> int:
        if self.is_cuda:
            return int(torch.cuda.memory_allocated(self.device))
        return current_rss_bytes() or 0

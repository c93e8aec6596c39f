"""What every benchmark shares: a synchronized median timer and the environment it ran in."""

from __future__ import annotations

import statistics
import time
from datetime import date


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn, reps: int = 3) -> tuple[float, object]:
    """Median wall time in ms over `reps` calls (synchronized), and the last result."""
    times, result = [], None
    for _ in range(reps):
        _sync()
        t = time.perf_counter()
        result = fn()
        _sync()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times), result


def environment() -> dict:
    import platform

    import torch
    import transformers

    env = {"date": date.today().isoformat(), "torch": torch.__version__, "transformers": transformers.__version__,
           "python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
           "threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name()
    return env

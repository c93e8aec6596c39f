"""Fault injection for the reliability tests, off unless SPECLSP_FAULTS is set.

SPECLSP_FAULTS is a comma-separated list:
  slow_step_ms=N   sleep N ms before every target forward once the first completion request has
                   come (makes cancellation observable; start-up work such as calibration is not slowed)
  error_on=N       raise RuntimeError in the model worker on the N-th completion request it runs
  oom_on=N         raise an out-of-memory error on the N-th completion request it runs
(typed-through answers never reach the worker, so they do not count).
These simulate what tests cannot provoke on demand; nothing else reads the variable.
"""

from __future__ import annotations

import os
import time


class InjectedError(RuntimeError):
    pass


def _parse(spec: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, value = part.partition("=")
        out[name] = int(value or 1)
    return out


FAULTS = _parse(os.environ.get("SPECLSP_FAULTS", ""))
_requests = 0


def before_forward() -> None:
    if "slow_step_ms" in FAULTS and _requests:
        time.sleep(FAULTS["slow_step_ms"] / 1e3)


def before_request() -> None:
    global _requests
    if not FAULTS:
        return
    _requests += 1  # also arms slow_step_ms
    if FAULTS.get("error_on") == _requests:
        raise InjectedError(f"injected fault in request {_requests}")
    if FAULTS.get("oom_on") == _requests:
        import torch

        raise torch.OutOfMemoryError(f"injected out of memory in request {_requests}")

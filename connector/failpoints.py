"""Named crash points for recovery tests: `VLOOP_FAILPOINTS="pull.page_stored=3"` kills the process
(os._exit, no cleanup, like `kill -9`) the third time that point is passed. Unset in production.
"""

from __future__ import annotations

import os
import sys
import threading

_counts: dict[str, int] = {}
_lock = threading.Lock()


def _armed() -> dict[str, int]:
    spec = os.environ.get("VLOOP_FAILPOINTS", "")
    out: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, nth = item.partition("=")
        out[name] = int(nth or 1)
    return out


def hit(name: str) -> None:
    """Count a pass through `name`; exit the process abruptly when it is armed for this pass."""
    armed = _armed()
    if name not in armed:
        return
    with _lock:
        _counts[name] = _counts.get(name, 0) + 1
        count = _counts[name]
    if count == armed[name]:
        sys.stderr.write(f"failpoint {name} #{count}: exiting abruptly\n")
        sys.stderr.flush()
        os._exit(86)

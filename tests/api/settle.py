"""Snapshots taken once the learner is quiet: a background refit swapping in bumps
the score version, which a before/after comparison would take for a change."""

from __future__ import annotations

import asyncio
from typing import Any


async def settled_snapshot(api: Any, timeout: float = 60.0) -> dict[str, Any]:
    """``api.snapshot()`` once no event waits for a refit and none runs."""
    for _ in range(int(timeout / 0.05)):
        fresh = api.learner.freshness()
        if fresh["events_since_refit"] == 0 and not fresh["refit_running"]:
            break
        await asyncio.sleep(0.05)
    return await api.snapshot()

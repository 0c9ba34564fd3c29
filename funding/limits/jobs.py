"""The worker's job: windows that are over are deleted."""

from __future__ import annotations

from funding.limits.service import sweep


async def sweep_windows(sessions, settings, gw) -> int:
    return await sweep(sessions, settings)


JOBS = [("rate-limit windows", sweep_windows)]

"""The worker's campaign job: deadlines, off-session charges, grace windows, match, abandoned checkouts."""

from __future__ import annotations

from funding.campaigns.deadline import run

JOBS = [("campaign deadlines", run)]

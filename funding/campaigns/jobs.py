"""The worker's campaign jobs: deadlines, off-session charges, grace windows, match, abandoned checkouts; reminders."""

from __future__ import annotations

from funding.campaigns.deadline import run
from funding.campaigns.news import send_reminders

JOBS = [("campaign deadlines", run), ("campaign reminders", send_reminders)]

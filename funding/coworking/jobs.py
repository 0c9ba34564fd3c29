"""Coworking's worker jobs: the credit notes that refunds and lost disputes call for."""

from __future__ import annotations

from funding.coworking.credit_notes import issue_pending

JOBS = [
    ("coworking credit notes", issue_pending),
]

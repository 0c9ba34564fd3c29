"""The donations' worker jobs."""

from funding.donations.annual import january

JOBS = [("annual receipts of recurring gifts", january)]

"""Demo: the cabinet's accountant receives the monthly exports of the association."""

from __future__ import annotations

from funding.exports.service import add_recipient

ACCOUNTANT = "sophie.roux@cabinet-dore-expertise.fr"


async def seed(session, demo) -> None:
    await add_recipient(session, demo.org.id, ACCOUNTANT, "Sophie Roux (Cabinet Dore Expertise)", "fec,csv,trial-balance")

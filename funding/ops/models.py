"""One row per running worker or web process that processes events: its heartbeat."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from funding.db import Base


class ProcessHeartbeat(Base):
    """A process that leases work (webhook events) says it is alive every few seconds. A lease
    taken by a process whose row is gone or stale is orphaned: others take it at once
    (webhooks.inbox.claim) instead of waiting for the lease to run out. A clean stop deletes
    the row; a process killed leaves it to go stale, or to be removed by a process of the same
    host that finds its pid gone."""

    __tablename__ = "process_heartbeats"
    __table_args__ = (Index("ix_process_heartbeats_beat_at", "beat_at"),)

    id: Mapped[str] = mapped_column(String(80), primary_key=True)  # host:pid:random
    kind: Mapped[str] = mapped_column(String(10))  # worker, web
    host: Mapped[str] = mapped_column(String(64))
    pid: Mapped[int] = mapped_column(BigInteger)
    started_at: Mapped[dt.datetime]
    beat_at: Mapped[dt.datetime]

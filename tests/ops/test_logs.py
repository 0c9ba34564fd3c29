"""Structured logs of the worker (issue 19): one JSON line per job, and a job refused by a
database outage is one line, not a traceback."""

from __future__ import annotations

import json
import logging

from sqlalchemy.exc import OperationalError

from funding import worker
from funding.ops.logs import JsonFormatter
from funding.stripe_gateway import StripeGateway


async def test_each_job_is_one_json_line_and_an_outage_no_traceback(settings, sessions, monkeypatch, caplog):
    async def fine(sessions, settings):
        return 3

    async def away(sessions, settings):
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError(111, "Connect call failed"))

    monkeypatch.setattr(worker, "jobs", lambda gw: [("fine", fine), ("away", away)])
    gw = StripeGateway(settings)
    try:
        with caplog.at_level(logging.INFO):
            done = await worker.run_once(sessions, settings.with_(log_format="json"), gw, worker="host:1:abcd")
    finally:
        await gw.aclose()
    assert done == {"fine": 3, "away": -1}
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "funding.jobs"]
    assert [(line["job"], line["done"], line["worker"]) for line in lines] == [("fine", 3, "host:1:abcd"),
                                                                                 ("away", -1, "host:1:abcd")]
    refusals = [r for r in caplog.records if r.name == "funding.worker"]
    assert len(refusals) == 1 and refusals[0].exc_info is None and "database unavailable" in refusals[0].getMessage()

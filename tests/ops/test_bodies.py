"""Request bodies are capped before they are buffered (issue 19): an anonymous POST used to be
held in memory up to 20 MB before the CSRF check refused it."""

from __future__ import annotations

import json
import logging

from funding.ops.bodies import BodyLimit
from funding.ops.logs import JsonFormatter
from tests.support.web import login_as


async def test_an_anonymous_post_is_refused_past_64_kb(client):
    response = await client.post("/login", content=b"email=" + b"a" * 70_000,
                                 headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 413 and "Request too large" in response.text
    small = await client.post("/login", data={"email": "x@example.org"})
    assert small.status_code == 403  # under the limit: on to the CSRF check, which refuses it


async def test_the_limit_reads_no_further_than_it_must():
    """A body sent in 1 MB pieces (no Content-Length) is refused after the first piece: the rest
    is never asked for, so never held."""
    asked, sent, reached = 0, [], []

    async def receive():
        nonlocal asked
        asked += 1
        return {"type": "http.request", "body": b"x" * 1_000_000, "more_body": asked < 20}

    async def send(message):
        sent.append(message)

    async def app(scope, receive, send):  # pragma: no cover - never reached
        reached.append(scope)

    limit = BodyLimit(app, secret_key="k" * 32, cookie="entrelab_session", anonymous=64 * 1024, member=1024 * 1024)
    await limit({"type": "http", "method": "POST", "path": "/login", "headers": []}, receive, send)
    assert asked == 1 and not reached and sent[0]["status"] == 413
    declared: list[dict] = []

    async def record(message):
        declared.append(message)

    await limit({"type": "http", "method": "POST", "path": "/login", "headers": [(b"content-length", b"30000000")]},
                receive, record)
    assert asked == 1 and declared[0]["status"] == 413  # a Content-Length over the limit: refused unread


async def test_a_signed_in_person_gets_a_larger_limit_and_uploads_more(client, sessions, settings, world):
    await login_as(client, sessions, settings, world.users["admin"])
    body = b"x=" + b"a" * 200_000
    headers = {"content-type": "application/x-www-form-urlencoded"}
    assert (await client.post("/logout", content=body, headers=headers)).status_code == 403  # CSRF, not size
    assert (await client.post("/logout", content=b"x=" + b"a" * 1_100_000, headers=headers)).status_code == 413
    upload = await client.post("/admin/ledger/record", content=b"x=" + b"a" * 2_000_000, headers=headers)
    assert upload.status_code == 403  # the upload route takes up to 20 MB: refused for its CSRF token only


async def test_the_webhook_keeps_its_own_limit(client):
    response = await client.post("/webhooks/stripe", content=b"{" + b" " * 100_000 + b"}",
                                 headers={"stripe-signature": "t=1,v1=00"})
    assert response.status_code == 400  # its signature, not the anonymous limit


async def test_json_logs_one_line_per_request_without_its_token(settings, caplog):
    import httpx

    from funding.app import create_app

    app = create_app(settings.with_(log_format="json"), process_events=False)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        with caplog.at_level(logging.INFO, logger="funding.access"):
            response = await c.get("/exports/lien/SeCrEtToKeN.abc?token=AnOtHeR", headers={"x-request-id": "req-12345678"})
    assert response.headers["x-request-id"] == "req-12345678"
    lines = [JsonFormatter().format(r) for r in caplog.records if r.name == "funding.access"]
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert line["request_id"] == "req-12345678" and line["method"] == "GET" and line["status"] == 400
    assert line["path"] == "/exports/lien/[jeton]" and "SeCrEt" not in lines[0] and "AnOtHeR" not in lines[0]

"""Request bodies are capped before anything buffers them.

Every layer after this one may read a whole body into memory (the NUL filter, the CSRF check,
a form parser): an anonymous POST used to be held up to 20 MB before the CSRF check refused it.
This middleware, outermost (the Stripe webhook, which caps its own body at 512 KB, and the
development sandbox are exempt),
counts the bytes of ``http.request`` messages as they arrive and answers 413 once a request
passes its limit (at once when its Content-Length says so; what came before is all it ever held): ``MAX_BODY_ANONYMOUS`` for a
request without a signed-in session (a session cookie whose signature holds and that names
a person: no database is asked), ``MAX_BODY_MEMBER`` for a signed-in one, and :data:`UPLOADS`
for the routes that take a file from staff.
"""

from __future__ import annotations

import base64
import json
import re

import itsdangerous
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from funding.security import MAX_FORM_BYTES

# Routes that take a CSV file from staff (the ledger's records, a bar's product list).
UPLOADS = (re.compile(r"^/admin/ledger/record$"), re.compile(r"^/bar/[^/]+/produits$"))
TOO_LARGE = "Requête trop volumineuse. / Request too large."


class BodyLimit:
    def __init__(self, app: ASGIApp, *, secret_key: str, cookie: str, anonymous: int, member: int,
                 max_age: int = 14 * 24 * 3600, upload: int = MAX_FORM_BYTES, exempt: tuple[str, ...] = ()):
        self.app, self.exempt = app, exempt
        self.signer = itsdangerous.TimestampSigner(str(secret_key))
        self.cookie, self.max_age = cookie.encode(), max_age
        self.anonymous, self.member, self.upload = anonymous, member, upload

    def _signed_in(self, scope: Scope) -> bool:
        for key, value in scope.get("headers", []):
            if key != b"cookie":
                continue
            for part in value.split(b";"):
                name, _, data = part.strip().partition(b"=")
                if name != self.cookie:
                    continue
                try:
                    session = json.loads(base64.b64decode(self.signer.unsign(data, max_age=self.max_age)))
                except (itsdangerous.BadSignature, ValueError):
                    return False
                return isinstance(session, dict) and session.get("uid") is not None
        return False

    def limit(self, scope: Scope) -> int:
        if not self._signed_in(scope):
            return self.anonymous
        return self.upload if any(p.match(scope["path"]) for p in UPLOADS) else self.member

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS") or scope["path"].startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope)
        declared = next((v for k, v in scope.get("headers", []) if k == b"content-length"), None)
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._refuse(scope, send)
            return
        body, more = bytearray(), True
        while more:  # read up to the limit only: the rest is never taken in
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            if len(body) > limit:
                await self._refuse(scope, send)
                return
            more = message.get("more_body", False)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        async def nothing() -> Message:
            return {"type": "http.disconnect"}

        response = PlainTextResponse(TOO_LARGE, status_code=413, headers={"connection": "close"})
        await response(scope, nothing, send)

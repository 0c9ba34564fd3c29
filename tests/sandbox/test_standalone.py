"""``python -m stripe_sandbox --port N``: an offline Stripe for any app, in its own process."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import stripe

from tests.support.live import free_port
from tests.support.sandbox import SECRET

ROOT = Path(__file__).resolve().parents[2]


def test_the_sandbox_runs_on_its_own_and_answers_stripe_python(server, tmp_path):
    port = free_port()
    state = tmp_path / "stripe.json"
    server.receiver.status = 200
    server.receiver.received.clear()
    proc = subprocess.Popen(
        [sys.executable, "-m", "stripe_sandbox", "--port", str(port), "--webhook-url", server.root + "/webhooks/stripe",
         "--webhook-secret", SECRET, "--state", str(state), "--delivery", "chaos", "--seed", "3"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{base}/_admin/clock", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the standalone sandbox did not start"
            time.sleep(0.1)
        client = stripe.StripeClient("sk_test_standalone", base_addresses={"api": base},
                                     http_client=stripe.HTTPXClient(allow_sync_methods=True))
        customer = client.v1.customers.create(params={"email": "solo@example.org"}, options={"idempotency_key": "solo-1"})
        assert customer.id.startswith("cus_") and client.v1.customers.retrieve(customer.id).email == "solo@example.org"
        session = client.v1.checkout.sessions.create(params={
            "mode": "payment", "success_url": "https://example.org/ok", "customer": customer.id,
            "line_items": [{"price_data": {"currency": "eur", "unit_amount": 1500, "product_data": {"name": "Café"}}, "quantity": 1}]})
        assert session.url.startswith(f"{base}/checkout/cs_test_")
        assert httpx.get(session.url, timeout=10).status_code == 200  # the hosted page is served too

        def created():  # delivered in the background (chaotic: in any order), signed with the given secret
            return [d for d in server.receiver.received if json.loads(d["body"])["type"] == "customer.created"]

        deadline = time.monotonic() + 15
        while not created():
            assert time.monotonic() < deadline, "no customer.created delivered"
            time.sleep(0.1)
        hook = created()[0]
        event = stripe.Webhook.construct_event(hook["body"], hook["signature"], SECRET)
        assert event["data"]["object"]["id"] == customer.id
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert customer.id in state.read_text()  # kept for the next run


def test_bad_arguments_are_one_clear_line():
    result = subprocess.run([sys.executable, "-m", "stripe_sandbox", "--port", "0"], cwd=ROOT, capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 2 and "--port: 1 to 65535" in result.stderr and "Traceback" not in result.stderr

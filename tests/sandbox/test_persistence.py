"""State survives a restart: objects, events, idempotency keys, the clock; ids stay unique."""

from __future__ import annotations

from tests.support.sandbox import make_client, make_sandbox, subscription_checkout


def test_state_round_trip(server, tmp_path):
    path = tmp_path / "sandbox" / "state.json"
    sb = make_sandbox(server, state_path=path)
    client = make_client(server)
    customer = client.v1.customers.create(params={"email": "p@example.org"}, options={"idempotency_key": "member-1"})
    session, _ = subscription_checkout(client, server)
    sub_id = client.v1.checkout.sessions.retrieve(session["id"])["subscription"]
    sb.advance_clock(3_600)
    assert path.exists() and [p.name for p in path.parent.iterdir()] == ["state.json"]
    ids_before = {o for kind in sb.store.data["objects"].values() for o in kind}
    now_before, events_before = sb.now(), sb.events

    restarted = make_sandbox(server, state_path=path)
    assert abs(restarted.now() - now_before) <= 2
    assert restarted.events == events_before
    client = make_client(server)
    assert client.v1.customers.retrieve(customer["id"])["email"] == "p@example.org"
    assert client.v1.subscriptions.retrieve(sub_id)["status"] == "active"
    replay = client.v1.customers.create(params={"email": "p@example.org"}, options={"idempotency_key": "member-1"})
    assert replay["id"] == customer["id"]
    new = client.v1.customers.create(params={"email": "q@example.org"})
    assert new["id"] not in ids_before
    assert len(client.v1.customers.list()["data"]) == 3  # p, the checkout customer, q
    restarted.advance_clock(32 * 86_400)
    assert client.v1.invoices.list(params={"subscription": sub_id})["data"][0]["billing_reason"] == "subscription_cycle"
    numbers = [i["number"] for i in client.v1.invoices.list(params={"subscription": sub_id})["data"]]
    assert len(set(numbers)) == 2

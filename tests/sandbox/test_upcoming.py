"""``invoice.upcoming`` (issue 18, SEPA's pre-notification): the sandbox sends it the account's
"upcoming renewal events" number of days (7 unless told otherwise) before each renewal of a
subscription charged automatically, once per period, with the renewal's invoice as a preview
(no id); never for a subscription ending at the period's end."""

from __future__ import annotations

from tests.support.sandbox import make_client, make_sandbox, types_since

DAY = 86_400


def _subscription(client, amount: int = 1500, **extra):
    customer = client.v1.customers.create(params={"email": "elise@example.org", "name": "Élise"})
    pm = client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer["id"]})
    price = client.v1.prices.create(params={"currency": "eur", "unit_amount": amount, "recurring": {"interval": "month"},
                                            "product_data": {"name": "Don mensuel"}})
    return client.v1.subscriptions.create(params={"customer": customer["id"], "items": [{"price": price["id"]}],
                                                  "default_payment_method": pm["id"],
                                                  "metadata": {"purpose": "recurring_gift"}, **extra})


def _upcoming(sb, first: int) -> list[dict]:
    return [e for e in sb.events[first:] if e["type"] == "invoice.upcoming"]


def test_the_renewal_is_announced_seven_days_before_with_its_amount_and_no_id(stripe_client, sb):
    sub = _subscription(stripe_client)
    end = sub["items"]["data"][0]["current_period_end"]
    first = len(sb.events)
    sb.advance_clock(end - sb.now() - 7 * DAY - 60)
    assert _upcoming(sb, first) == []
    sb.advance_clock(120)
    [event] = _upcoming(sb, first)
    invoice = event["data"]["object"]
    assert "id" not in invoice and invoice["object"] == "invoice" and event["created"] == end - 7 * DAY
    assert (invoice["amount_due"], invoice["currency"], invoice["customer"]) == (1500, "eur", sub["customer"])
    assert invoice["parent"]["subscription_details"] == {"metadata": {"purpose": "recurring_gift"}, "subscription": sub["id"]}
    assert invoice["next_payment_attempt"] == end + 3600 and invoice["period_end"] == end
    assert invoice["lines"]["data"][0]["period"]["start"] == end
    assert not [i for i in stripe_client.v1.invoices.list(params={"customer": sub["customer"]})["data"]
                if i["billing_reason"] == "upcoming"]  # a preview: nothing stored
    # Once per period: the renewal comes, then the next one is announced in turn.
    sb.advance_clock(10 * DAY)
    assert len(_upcoming(sb, first)) == 1 and "invoice.created" in types_since(sb, first)
    sb.advance_clock(28 * DAY)
    assert len(_upcoming(sb, first)) == 2


def test_no_announcement_for_a_subscription_ending_at_the_period_s_end(stripe_client, sb):
    sub = _subscription(stripe_client)
    stripe_client.v1.subscriptions.update(sub["id"], params={"cancel_at_period_end": True})
    first = len(sb.events)
    sb.advance_clock(40 * DAY)
    assert _upcoming(sb, first) == []


def test_the_number_of_days_is_the_account_s_setting(server):
    sb = make_sandbox(server, upcoming_days=3)
    client = make_client(server)
    sub = _subscription(client)
    end = sub["items"]["data"][0]["current_period_end"]
    first = len(sb.events)
    sb.advance_clock(end - sb.now() - 4 * DAY)
    assert _upcoming(sb, first) == []
    sb.advance_clock(2 * DAY)
    assert [e["created"] for e in _upcoming(sb, first)] == [end - 3 * DAY]
    off = make_sandbox(server, upcoming_days=0)
    client = make_client(server)
    _subscription(client)
    off.advance_clock(40 * DAY)
    assert _upcoming(off, 0) == []

"""A donor paying a monthly gift by SEPA changes their bank account in the Billing Portal
(issue 18): from the backer space's "Changer de compte ou de carte", the sandbox's portal
collects the new IBAN and its mandate and makes it the default; the backer space shows the new
mandate and the next month is debited from the new account, booked when it settles; the books
equal Stripe's balance at each step."""

from __future__ import annotations

from funding.stripe_gateway import SANDBOX_PATH
from tests.support.e2e import DAY, HOUR, advance, books_match_stripe, db_call, sandbox_get, wait_for
from tests.support.gifts import donor_client, gift_facts, subscribe_sepa
from tests.support.web import csrf_of
from tests.support.world import make_world

NEW_IBAN = "DE89 3704 0044 0532 0130 00"


def booked(e2e, count: int, *, days: int = 10):
    """Day by day on the sandbox's clock until ``count`` instalments are booked (5 business days a debit)."""
    def ready():
        facts = gift_facts(e2e)
        return facts if len(facts.instalments) >= count and len(facts.entries) >= count else None

    for _day in range(days):
        if found := ready():
            return found
        advance(e2e, DAY)
    return wait_for(ready, timeout=30, what=f"{count} instalment(s) booked")


def test_a_sepa_donor_replaces_their_bank_account_in_the_portal_and_the_next_month_is_debited_from_it(e2e):
    world = db_call(e2e.settings, make_world)
    thanks = subscribe_sepa(e2e, world, other="20")
    assert thanks.status_code == 200, thanks.text[:500]
    booked(e2e, 1)
    gift = wait_for(lambda: (f := gift_facts(e2e)).gift.status == "active" and f.gift, what="the gift active")
    books_match_stripe(e2e)

    with donor_client(e2e, "ana@example.org") as client:
        space = client.get("/mes-contributions")
        assert "20041 •••• 2606" in space.text and "Changer de compte ou de carte" in space.text
        portal = client.post(f"/mes-contributions/dons-reguliers/{gift.id}/carte", data={"csrf_token": csrf_of(space.text)})
        assert portal.status_code == 303 and f"{SANDBOX_PATH}/portal/" in portal.headers["location"], portal.text[:300]
        page = client.get(portal.headers["location"])
        assert "Prélèvement SEPA — compte se terminant par 2606" in page.text and 'id="update-sepa"' in page.text
        saved = client.post(portal.headers["location"].split("?")[0],
                            data={"action": "update-sepa", "iban": NEW_IBAN, "account-holder-name": "Ana Martin"})
        assert saved.status_code == 200 and "Votre compte bancaire est enregistré" in saved.text, saved.text[:500]
        sub = sandbox_get(e2e, f"/v1/subscriptions/{gift.stripe_subscription_id}")
        new_pm = sub["default_payment_method"]
        mandate = sandbox_get(e2e, f"/v1/setup_intents?customer={gift.stripe_customer_id}&payment_method={new_pm}")["data"][0]["mandate"]
        reference = sandbox_get(e2e, f"/v1/mandates/{mandate}")["payment_method_details"]["sepa_debit"]["reference"]
        space = client.get("/mes-contributions").text
        assert "37040044 •••• 3000" in space and f"mandat n° {reference}." in space and "2606" not in space  # from Stripe

    # The next month is debited from the new account, and booked once it settles.
    end = sub["items"]["data"][0]["current_period_end"]
    advance(e2e, end - e2e.sandbox.now() + 2 * HOUR)
    charges = wait_for(lambda: [c for c in sandbox_get(e2e, f"/v1/charges?customer={gift.stripe_customer_id}")["data"]
                                if c["payment_method"] == new_pm], what="the month's debit from the new account")
    assert charges[0]["status"] == "pending" and charges[0]["payment_method_details"]["sepa_debit"]["mandate"] == mandate
    books_match_stripe(e2e)
    facts = booked(e2e, 2)
    assert [i.amount for i in facts.instalments] == [2000, 2000]
    books_match_stripe(e2e)

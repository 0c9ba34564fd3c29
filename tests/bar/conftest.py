from tests.webhooks.conftest import fake_stripe, gw, stripe_settings  # noqa: F401  (Stripe faked over respx)

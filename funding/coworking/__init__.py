"""Coworking: plans per site, members, Stripe Billing subscriptions, self-service and access."""

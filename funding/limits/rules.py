"""The rate limits' defaults, apart from the service: the settings read them to check RATE_LIMITS."""

from __future__ import annotations

# action: (hits, seconds). Per address for the actions that take one, else per client IP.
DEFAULTS: dict[str, tuple[int, int]] = {
    "login": (5, 900),  # login links asked for one address
    "login-ip": (30, 900),  # login links asked from one client
    "join": (5, 3600),  # coworking join forms sent for one address
    "join-ip": (20, 3600),  # … from one client
    "join-mail": (1, 3600),  # "you already have an account" emails to one address
    "contribute": (10, 3600),  # contributions (pledges and their Checkout) from one client
    "hold": (3, 3600),  # contributions that hold a limited reward, from one client
    "donate": (10, 3600),  # donations (their Checkout) from one client
    "receipt": (30, 3600),  # tax receipt and yearly summary pages shown to one client
    "resend": (3, 3600),  # contributions' and receipts' links sent again to one address
    "resend-ip": (20, 3600),  # … asked from one client
    "remind": (10, 3600),  # reminders before a campaign's end asked from one client
    "api": (120, 60),  # public API and widget requests from one client
}

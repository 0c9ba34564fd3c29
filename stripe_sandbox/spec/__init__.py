"""Stripe's request parameters for the API version the sandbox serves, as data (``endive.json``).

``generate.py`` writes the data from stripe-python's typed ``*Params`` (run by hand after a
stripe-python upgrade); ``stripe_sandbox.validation`` reads it."""

"""Snack/bar: products per site, the staff till, members' tabs, walk-in sales, cash-register
closings (ACCOUNTING.md §5) and the settlement of tabs through Stripe."""

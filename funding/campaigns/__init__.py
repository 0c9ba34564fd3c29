"""Crowdfunding campaigns: all-or-nothing and keep-it-all, tiers, public matchfunding, receipts."""

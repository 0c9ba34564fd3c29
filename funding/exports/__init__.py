"""Exports for accountants (FEC, CSV journal, Beancount, hledger, trial balance, general
ledger), funding-mix reports, monthly sending and open data."""

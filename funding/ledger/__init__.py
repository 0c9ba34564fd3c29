"""The ledger. Loading the package registers the year-end entries that close_month posts."""

from funding.ledger import yearend  # noqa: F401  (registers funding.ledger.yearend.post_year_end)

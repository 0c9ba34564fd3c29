"""Entre-Lab Funding: the money service of a network of tiers-lieux."""

__version__ = "0.1.0"

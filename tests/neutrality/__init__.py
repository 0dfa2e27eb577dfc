"""Tests of neutrality/: the CER registry, the market with Stripe, retirements and certificates."""

"""Tests of the point ledger (wallets/): credits, holds, posts, releases, expiry, reads and the audit."""

"""Tests of reductions/: operator reports, methodologies and exchange rules, credited into wallets."""

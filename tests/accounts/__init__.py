"""Tests of accounts/: sign-up and sign-in, roles, sessions, API keys and their scopes."""

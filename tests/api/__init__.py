"""Tests of the API conventions: errors, inputs, idempotency, pagination, limits, persisted operations, contracts."""

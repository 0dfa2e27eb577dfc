"""The lowest layer every domain package shares: table base, clock, domain errors,
keyset pages and idempotency records. It knows nothing of GraphQL or HTTP."""

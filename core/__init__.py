"""The lowest layer every domain package shares: table base, clock, domain errors (and the
database's refusals at commit turned into them), keyset pages, idempotency records, and the reader
of the domains' database functions kept as .sql source. It knows nothing of GraphQL or HTTP."""

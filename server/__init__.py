"""Composition root: settings, embedded servers, database and Redis handles, ASGI app, CLI."""

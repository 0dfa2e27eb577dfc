"""Serve the app (or the plain baseline app) with uvicorn configured as `tanpuhui serve` does,
on 127.0.0.1. Run by bench.env.http_server in a subprocess, so the load generator does not share
the server's interpreter (and its GIL)."""

from __future__ import annotations

import argparse


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--app", choices=["tanpuhui", "plain"], required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--stripe-emulator", default=None, help="localstripe's URL (payments in TEST_EMULATOR mode)")
    parser.add_argument("--stripe-webhook-secret", default=None, help="the secret its webhooks are signed with")
    parser.add_argument("--set", action="append", default=[], help="a Settings override, name=int")
    args = parser.parse_args()

    import uvicorn

    from server.logs import configure_logging

    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = int(value)
    if args.app == "tanpuhui":
        from bench.env import PII_KEY, SECRET_KEY
        from core.clock import SystemClock
        from server.app import build_services, create_app
        from server.settings import load_settings

        settings = load_settings(database_url=args.database_url, redis_url=args.redis_url, secret_key=SECRET_KEY,
                                 personal_data_key=PII_KEY, **overrides)
        configure_logging(settings.log_level)
        from neutrality.market.payments import from_settings

        payments = from_settings(settings, emulator_url=args.stripe_emulator,
                                 emulator_secret=args.stripe_webhook_secret)
        app = create_app(build_services(settings, args.database_url, args.redis_url, clock=SystemClock(),
                                        payments=payments))
    else:
        from bench.plain_app import create_plain_app

        configure_logging("INFO")
        app = create_plain_app(args.database_url, overrides.get("db_pool_size", 20))
    config = uvicorn.Config(app, host="127.0.0.1", port=args.port, log_config=None, access_log=False, workers=1,
                            lifespan="on", server_header=False)
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()

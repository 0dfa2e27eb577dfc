"""The CER market (art. 18): a holder offers whole tonnes of one project and vintage at a price per
tonne in fen (offers.py); a buyer's tonnes are reserved for its order and paid through Stripe
(purchases.py, through the payments adapter payments.py); the signed webhook delivers them, or a
failure, a cancellation or a lapsed reservation releases them, and a payment that finds no tonnes is
refunded (settlement.py, under the order's row lock); the scheduled reservation sweep (jobs.py)
releases lapsed reservations and reconciles what webhooks left behind; reads.py lists offers and
orders; models.py holds their tables. Lock order everywhere: order row -> offer row -> blocks.
Callers import what they use from the module that owns it."""

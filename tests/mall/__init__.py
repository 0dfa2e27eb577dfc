"""Tests of the mall (mall/): listings, redemptions, fulfilment, time-outs, races and invariants."""

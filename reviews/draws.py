"""The draw of experts (art. 13, 17: 随机抽取), and how anyone re-checks it.

Each draw uses a 32-byte seed fixed before the draw: the seed of a review's first draw is made
when the review opens, and its sha256 (the commitment) is public from then on; each draw reveals
its seed and commits to the next one, for a replacement. The eligible pool is the active experts
of the review's field with no declared conflict with a party and no seat in the review yet,
sorted by expert id. The draw takes `seats` experts without replacement: the i-th pick (from 0)
is index int(HMAC-SHA256(seed, "<review id>:<round>:<i>")) mod (experts left in the pool), and
that expert leaves the pool. Every expert of the pool is equally likely for each seat (the
modulo bias of a 256-bit number is below 2^-240).

`recompute` needs only what the public record shows: the seed, the pool in order, the round and
the review id. So a draw cannot be chosen after the fact: a different panel needs a different seed,
and a different seed does not match the commitment published before the pool was known. (The
platform picks the seed; mixing in a public randomness beacon would also take away its choice of
seed at opening time, and is left for when one is available to the platform.)"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid


def new_seed() -> bytes:
    return secrets.token_bytes(32)


def commitment(seed: bytes) -> str:
    return hashlib.sha256(seed).hexdigest()


def pick(seed: bytes, review_id: uuid.UUID, round_: int, pool: list[uuid.UUID], seats: int) -> list[uuid.UUID]:
    """The experts a draw chooses from `pool` (in the recorded order) for `seats` seats."""
    left, chosen = list(pool), []
    for i in range(min(seats, len(left))):
        digest = hmac.new(seed, f"{review_id}:{round_}:{i}".encode(), hashlib.sha256).digest()
        chosen.append(left.pop(int.from_bytes(digest, "big") % len(left)))
    return chosen


def recompute(*, seed: bytes, published_commitment: str, review_id: uuid.UUID, round_: int,
              pool: list[uuid.UUID], seats: int, chosen: list[uuid.UUID]) -> tuple[bool, bool]:
    """(the seed matches the commitment published before the draw, the recorded choice is what the
    seed and pool give)."""
    return (hmac.compare_digest(commitment(seed), published_commitment),
            pick(seed, review_id, round_, pool, seats) == list(chosen))

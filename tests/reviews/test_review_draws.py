"""The draw of experts (art. 13, 17): uniform over the eligible pool, conflicts and suspended
experts excluded, fixed before it happens and re-checkable by anyone; declinations and their
replacements; opinions and the decision, every refusal, and the journal."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import uuid

import pytest
from sqlalchemy import text

from core.errors import DomainError
from reviews import draws, experts, service
from reviews.models import Opinion, ReviewStatus
from tests.neutrality.fixtures import accounts
from tests.reviews.fixtures import answer_all, in_transaction, library, opened_review

# chi-square critical values at p = 0.001
CHI2_0001 = {5: 20.52, 14: 36.12}


def chi_square(counts: list[int]) -> float:
    expected = sum(counts) / len(counts)
    return sum((c - expected) ** 2 / expected for c in counts)


def test_each_expert_of_the_pool_is_equally_likely_for_a_seat():
    pool = sorted(uuid.uuid4() for _ in range(6))
    review_id = uuid.uuid4()
    counts = dict.fromkeys(pool, 0)
    for n in range(6_000):
        [chosen] = draws.pick(hashlib.sha256(f"seed-{n}".encode()).digest(), review_id, 1, pool, 1)
        counts[chosen] += 1
    assert chi_square(list(counts.values())) < CHI2_0001[5], counts


def test_every_panel_of_two_is_equally_likely():
    pool = sorted(uuid.uuid4() for _ in range(6))
    review_id = uuid.uuid4()
    counts = {frozenset(pair): 0 for pair in itertools.combinations(pool, 2)}
    for n in range(15_000):
        chosen = draws.pick(hashlib.sha256(f"pair-{n}".encode()).digest(), review_id, 1, pool, 2)
        assert len(set(chosen)) == 2
        counts[frozenset(chosen)] += 1
    assert chi_square(list(counts.values())) < CHI2_0001[14], counts


def test_a_draw_depends_on_seed_review_and_round_and_can_be_recomputed():
    pool = sorted(uuid.uuid4() for _ in range(20))
    seed, review_id = draws.new_seed(), uuid.uuid4()
    chosen = draws.pick(seed, review_id, 1, pool, 3)
    assert draws.recompute(seed=seed, published_commitment=draws.commitment(seed), review_id=review_id, round_=1,
                           pool=pool, seats=3, chosen=chosen) == (True, True)
    # another seed does not match the commitment; another panel does not match the seed
    other = draws.new_seed()
    assert draws.recompute(seed=other, published_commitment=draws.commitment(seed), review_id=review_id, round_=1,
                           pool=pool, seats=3, chosen=draws.pick(other, review_id, 1, pool, 3))[0] is False
    swapped = [p for p in pool if p not in chosen][:1] + chosen[1:]
    assert draws.recompute(seed=seed, published_commitment=draws.commitment(seed), review_id=review_id, round_=1,
                           pool=pool, seats=3, chosen=swapped) == (True, False)
    assert {tuple(draws.pick(seed, review_id, r, pool, 3)) for r in range(1, 6)} != {tuple(chosen)}


async def test_the_draw_reveals_the_committed_seed_and_records_the_pool(services):
    ids = await library(services, 5)
    review_id = await opened_review(services, seats=3)
    async with services.session_factory() as session:
        opened = await service.get_review(session=session, review_id=review_id)
        commitment = opened.next_commitment
    await answer_all(services, review_id)
    async with services.session_factory() as session:
        [draw] = (await service.draws_of(session=session, review_ids=[review_id]))[review_id]
        checks = await service.recheck_draws(session=session, review_id=review_id)
        review = await service.get_review(session=session, review_id=review_id)
    assert draw.commitment == commitment == hashlib.sha256(draw.seed).hexdigest()
    assert list(draw.pool) == sorted(ids) and len(draw.chosen) == 3 and set(draw.chosen) <= set(ids)
    assert [c.valid for c in checks] == [True]
    # the next draw's seed is another one, already committed
    assert review.next_commitment != commitment and review.status == ReviewStatus.DRAWN.value

    # a record altered afterwards no longer rechecks
    async with services.session_factory() as session:
        async with session.begin():
            others = [i for i in ids if i not in draw.chosen]
            await session.execute(text("UPDATE review_draws SET chosen = :c WHERE id = :i"),
                                  {"c": [others[0], *draw.chosen[1:]], "i": draw.id})
            [tampered] = await service.recheck_draws(session=session, review_id=review_id)
            assert (tampered.commitment_matches, tampered.choice_matches) == (True, False)
            await session.rollback()


async def test_conflicted_suspended_and_other_field_experts_are_never_drawn(services):
    ids = await library(services, 6)
    [methodologist] = await library(services, 1, fields=("methodology",))
    [owner, verifier] = await accounts(services, 2)
    [regulator_id] = await accounts(services, 1, role="regulator", kind="authority")
    await in_transaction(services, experts.declare_conflict, declared_by=regulator_id, expert_id=ids[0],
                         organisation_id=owner, note="曾任该公司顾问")
    await in_transaction(services, experts.declare_conflict, declared_by=regulator_id, expert_id=ids[1],
                         organisation_id=verifier, note=None)
    await in_transaction(services, experts.set_status, regulator_id=regulator_id, expert_id=ids[2], active=False,
                         reason="任期届满")
    review_id = await opened_review(services, seats=3, parties=[owner, verifier])
    async with services.session_factory() as session:
        review = await service.get_review(session=session, review_id=review_id)
        pool = await service.eligible_pool(session=session, review=review)
    assert pool == sorted(ids[3:]) and methodologist not in pool
    await answer_all(services, review_id)
    async with services.session_factory() as session:
        seats = (await service.seats_of(session=session, review_ids=[review_id]))[review_id]
    assert {s.expert_id for s in seats} == set(ids[3:])


async def test_too_few_eligible_experts_is_said_and_changes_nothing(services):
    await library(services, 2)
    review_id = await opened_review(services, seats=3)
    [regulator_id] = await accounts(services, 1, role="regulator", kind="authority")
    with pytest.raises(DomainError) as refused:
        await in_transaction(services, service.draw_experts, regulator_id=regulator_id, review_id=review_id)
    assert refused.value.code == "TOO_FEW_EXPERTS" and "2 expert(s)" in refused.value.message
    async with services.session_factory() as session:
        review = await service.get_review(session=session, review_id=review_id)
        assert review.status == "open" and review.draws_done == 0
        assert (await service.draws_of(session=session, review_ids=[review_id]))[review_id] == []


async def test_a_declining_expert_is_replaced_by_a_draw_of_the_committed_seed(services):
    ids = await library(services, 4)
    review_id = await opened_review(services, seats=3)
    [regulator_id] = await accounts(services, 1, role="regulator", kind="authority")
    await in_transaction(services, service.draw_experts, regulator_id=regulator_id, review_id=review_id)
    async with services.session_factory() as session:
        committed = (await service.get_review(session=session, review_id=review_id)).next_commitment
        seats = (await service.seats_of(session=session, review_ids=[review_id]))[review_id]
        leaving = seats[0]
        account = (await experts.get_expert(session=session, expert_id=leaving.expert_id)).account_id
    with pytest.raises(DomainError) as no_reason:
        await in_transaction(services, service.decline_seat, account_id=account, review_id=review_id, reason=" ")
    assert no_reason.value.code == "REASON_REQUIRED"
    await in_transaction(services, service.decline_seat, account_id=account, review_id=review_id,
                         reason="与项目业主存在合作关系")
    async with services.session_factory() as session:
        rounds = (await service.draws_of(session=session, review_ids=[review_id]))[review_id]
        seats = (await service.seats_of(session=session, review_ids=[review_id]))[review_id]
        checks = await service.recheck_draws(session=session, review_id=review_id)
    [replacement] = [s for s in seats if s.round == 2]
    [remaining] = set(ids) - {s.expert_id for s in seats if s.round == 1}
    assert rounds[1].commitment == committed and list(rounds[1].pool) == [remaining]
    assert replacement.expert_id == remaining and [c.valid for c in checks] == [True, True]
    # a declined expert cannot answer, and a second declination finds nobody left: the seat stays empty
    with pytest.raises(DomainError) as again:
        await in_transaction(services, service.submit_opinion, account_id=account, review_id=review_id,
                             opinion=Opinion.PASS, text="x")
    assert again.value.code == "ALREADY_ANSWERED"
    async with services.session_factory() as session:
        account2 = (await experts.get_expert(session=session, expert_id=remaining)).account_id
    await in_transaction(services, service.decline_seat, account_id=account2, review_id=review_id, reason="回避")
    async with services.session_factory() as session:
        actions = [e.action for e in await service.journal(session=session, review_id=review_id)]
        tally = await service.tally(session=session, review=await service.get_review(session=session,
                                                                                     review_id=review_id))
    assert actions == ["opened", "drawn", "declined", "drawn", "declined", "short"] and tally.outstanding == 3
    # once the library grows the regulator draws the empty seat
    [newcomer] = await library(services, 1)
    await in_transaction(services, service.draw_experts, regulator_id=regulator_id, review_id=review_id)
    async with services.session_factory() as session:
        seats = (await service.seats_of(session=session, review_ids=[review_id]))[review_id]
    assert [s.expert_id for s in seats if s.round == 3] == [newcomer]


async def test_opinions_then_a_reasoned_decision_and_every_refusal(services):
    await library(services, 3)
    review_id = await opened_review(services, seats=3)
    [regulator_id] = await accounts(services, 1, role="regulator", kind="authority")
    with pytest.raises(DomainError) as early:
        await in_transaction(services, service.decide_review, regulator_id=regulator_id, review_id=review_id,
                             approve=True, reason="ok")
    assert early.value.code == "OPINIONS_OUTSTANDING"
    [first, *_] = await answer_all(services, review_id)
    async with services.session_factory() as session:
        account = (await experts.get_expert(session=session, expert_id=first.expert_id)).account_id
    with pytest.raises(DomainError) as twice:
        await in_transaction(services, service.submit_opinion, account_id=account, review_id=review_id,
                             opinion=Opinion.FAIL, text="改主意")
    assert twice.value.code == "ALREADY_ANSWERED"
    [outsider] = await accounts(services, 1, role="individual", kind="person")
    with pytest.raises(DomainError) as stranger:
        await in_transaction(services, service.submit_opinion, account_id=outsider, review_id=review_id,
                             opinion=Opinion.PASS, text="x")
    assert stranger.value.code == "NOT_AN_EXPERT"
    with pytest.raises(DomainError) as bare:
        await in_transaction(services, service.decide_review, regulator_id=regulator_id, review_id=review_id,
                             approve=True, reason="  ")
    assert bare.value.code == "REASON_REQUIRED"
    decided = await in_transaction(services, service.decide_review, regulator_id=regulator_id, review_id=review_id,
                                   approve=True, reason="三位专家均认为通过")
    assert (decided.status, decided.decision) == ("decided", "approved")
    with pytest.raises(DomainError) as again:
        await in_transaction(services, service.decide_review, regulator_id=regulator_id, review_id=review_id,
                             approve=False, reason="改判")
    assert again.value.code == "WRONG_STATUS"
    async with services.session_factory() as session:
        events = await service.journal(session=session, review_id=review_id)
    assert [e.action for e in events] == ["opened", "drawn", "answered", "answered", "answered", "decided"]
    assert events[-1].actor_id == regulator_id and events[-1].details["opinions"]["pass"] == 3


async def test_parallel_draws_of_one_review_seat_each_expert_once(services):
    await library(services, 8)
    review_id = await opened_review(services, seats=3)
    [regulator_id] = await accounts(services, 1, role="regulator", kind="authority")
    outcomes = await asyncio.gather(*(in_transaction(services, service.draw_experts, regulator_id=regulator_id,
                                                     review_id=review_id) for _ in range(4)), return_exceptions=True)
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    async with services.session_factory() as session:
        seats = (await service.seats_of(session=session, review_ids=[review_id]))[review_id]
        rounds = (await service.draws_of(session=session, review_ids=[review_id]))[review_id]
    assert len(seats) == 3 and len(rounds) == 1

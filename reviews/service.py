"""A review's life (art. 13, 17): opened on a subject, experts drawn into its seats, opinions, the
regulator's decision. Every step is journalled (review_events) with who and when.

open (the first draw's seed committed) -> drawn (every seat filled by a re-checkable draw,
reviews/draws.py) -> decided (the regulator approves or refuses, giving reasons, once every seat
has an opinion). A seated expert who declines for a conflict leaves the seat; it is drawn again
at once, with the seed committed at the previous draw, among the experts not yet drawn in this
review; when none is eligible the seat stays empty until the regulator draws again.

The flows that review something own their decision: the methodology filing, the project filing
and later scenarios call `decide_review` inside their own transaction, so the subject's state and
the review's decision change together.

Lock order: the review row (FOR UPDATE), then its seats. Every function that changes a review
takes that lock first, so draws, declinations, opinions and the decision are serialised per review."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.models import Account, AccountRole, Role, RoleStatus
from accounts.service import record_audit_event
from core.clock import Clock
from core.db import get_row
from core.errors import CoreCode, DomainError, NotFound
from core.keyset import Page, keyset_page
from core.text import clean_text
from reviews import draws
from reviews.errors import ReviewCode
from reviews.experts import check_field, expert_of_account
from reviews.models import (
    Decision,
    Expert,
    ExpertConflict,
    ExpertStatus,
    Opinion,
    Review,
    ReviewDraw,
    ReviewEvent,
    ReviewSeat,
    ReviewStatus,
    SeatStatus,
    SubjectKind,
)

MAX_SEATS = 15
TEXT_LIMIT = 20_000


def _journal(session: AsyncSession, clock: Clock, review: Review, action: str, actor: uuid.UUID, *,
             before: dict | None = None, after: dict | None = None, **details) -> None:
    """The step in the review's own journal and in the supervision audit log (`review.<action>`,
    art. 30-31; the audit entry is written at commit, audit_log.service)."""
    session.add(ReviewEvent(review_id=review.id, action=action, actor_id=actor, at=clock.now(), details=details))
    record_audit_event(session, clock, actor=actor, action=f"review.{action}", subject_type="review",
                       subject_id=review.id, before=before, after=after, subject_kind=review.subject_kind,
                       **details)


def _reason(value: str | None, field: str, code: ReviewCode | CoreCode, what: str) -> str:
    return clean_text(value, field=field, what=what, limit=TEXT_LIMIT, code=code, multiline=True)


async def open_review(*, session: AsyncSession, clock: Clock, opened_by: uuid.UUID, subject_kind: SubjectKind,
                      subject_id: uuid.UUID, field: str, experts_wanted: int, parties: list[uuid.UUID]) -> Review:
    """Open a review of a subject in a field; the first draw's seed is fixed now and its sha256
    published, before anyone knows who will be eligible at the draw."""
    if not 1 <= experts_wanted <= MAX_SEATS:
        raise DomainError(CoreCode.INVALID, f"A review has 1 to {MAX_SEATS} experts.", "expertsWanted")
    seed = draws.new_seed()
    review = Review(id=uuid.uuid4(), subject_kind=SubjectKind(subject_kind).value, subject_id=subject_id,
                    field=check_field(field), experts_wanted=experts_wanted,
                    parties=sorted(set(parties), key=str), status=ReviewStatus.OPEN.value, next_seed=seed,
                    next_commitment=draws.commitment(seed), draws_done=0, opened_by=opened_by, opened_at=clock.now())
    session.add(review)
    await session.flush()
    _journal(session, clock, review, "opened", opened_by, field=review.field, seats=experts_wanted,
             commitment=review.next_commitment, after={"status": review.status})
    await session.flush()
    return review


async def review_of(*, session: AsyncSession, subject_kind: SubjectKind, subject_id: uuid.UUID) -> Review | None:
    """The subject's latest review."""
    return await session.scalar(select(Review).where(Review.subject_kind == SubjectKind(subject_kind).value,
                                                     Review.subject_id == subject_id)
                                .order_by(Review.opened_at.desc(), Review.id.desc()).limit(1))


async def get_review(*, session: AsyncSession, review_id: uuid.UUID, lock: bool = False) -> Review:
    return await get_row(session, Review, review_id, lock=lock, message="No review has this id.", field="reviewId")


async def seats_of(*, session: AsyncSession, review_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[ReviewSeat]]:
    found: dict[uuid.UUID, list[ReviewSeat]] = {i: [] for i in review_ids}
    for seat in await session.scalars(select(ReviewSeat).where(ReviewSeat.review_id.in_(review_ids))
                                      .order_by(ReviewSeat.drawn_at, ReviewSeat.round, ReviewSeat.id)):
        found[seat.review_id].append(seat)
    return found


async def is_seated(*, session: AsyncSession, review_id: uuid.UUID | None, account_id: uuid.UUID) -> bool:
    """Whether this account's expert was drawn into the review (declined seats included): such an
    expert reads the review's subject (experts see only their reviews, art. 13)."""
    if review_id is None:
        return False
    seated = await session.scalar(
        select(ReviewSeat.id).join(Expert, Expert.id == ReviewSeat.expert_id)
        .where(ReviewSeat.review_id == review_id, Expert.account_id == account_id).limit(1))
    return seated is not None


async def may_read_subject(*, session: AsyncSession, review_id: uuid.UUID | None, applicant_id: uuid.UUID,
                           account_id: uuid.UUID) -> bool:
    """Whether this account reads an application under review (besides the regulator): its
    applicant, and the experts drawn into its review (experts see only their reviews, art. 13)."""
    return applicant_id == account_id or await is_seated(session=session, review_id=review_id, account_id=account_id)


async def reviews_by_id(*, session: AsyncSession, review_ids: list[uuid.UUID]) -> dict[uuid.UUID, Review]:
    """The reviews of a page, in one query."""
    if not review_ids:
        return {}
    return {r.id: r for r in await session.scalars(select(Review).where(Review.id.in_(review_ids)))}


async def opinion_counts(*, session: AsyncSession, review_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, int]]:
    """Each review's answered opinions by kind (tally's counts), for a page of reviews in one grouped query."""
    counts = {i: {o.value: 0 for o in Opinion} for i in review_ids}
    if review_ids:
        rows = await session.execute(
            select(ReviewSeat.review_id, ReviewSeat.opinion, func.count())
            .where(ReviewSeat.review_id.in_(review_ids), ReviewSeat.status == SeatStatus.ANSWERED.value)
            .group_by(ReviewSeat.review_id, ReviewSeat.opinion))
        for review_id, opinion, count in rows:
            counts[review_id][opinion] = count
    return counts


async def eligible_pool(*, session: AsyncSession, review: Review) -> list[uuid.UUID]:
    """Active experts of the review's field, with an active EXPERT role and an account in good
    standing, no declared conflict with a party, and no seat in this review yet; by id."""
    conflicted = select(ExpertConflict.id).where(ExpertConflict.expert_id == Expert.id,
                                                 ExpertConflict.organisation_id.in_(review.parties))
    seated = select(ReviewSeat.id).where(ReviewSeat.review_id == review.id, ReviewSeat.expert_id == Expert.id)
    stmt = (select(Expert.id)
            .join(Account, Account.id == Expert.account_id)
            .join(AccountRole, and_(AccountRole.account_id == Expert.account_id,
                                    AccountRole.role == Role.EXPERT.value,
                                    AccountRole.status == RoleStatus.ACTIVE.value))
            .where(Expert.status == ExpertStatus.ACTIVE.value, Expert.fields.any(review.field),
                   Account.suspended_at.is_(None), ~conflicted.exists(), ~seated.exists())
            .order_by(Expert.id))
    return list(await session.scalars(stmt))


async def _draw(session: AsyncSession, clock: Clock, review: Review, actor: uuid.UUID, *,
                required: bool) -> ReviewDraw | None:
    """Fill the review's empty seats by one draw. With `required`, too few eligible experts is a
    refusal; otherwise (a replacement after a declination) the seats stay empty, journalled."""
    filled = await session.scalar(select(func.count()).select_from(ReviewSeat).where(
        ReviewSeat.review_id == review.id, ReviewSeat.status != SeatStatus.DECLINED.value))
    empty = review.experts_wanted - int(filled)
    if empty <= 0:
        return None
    pool = await eligible_pool(session=session, review=review)
    if len(pool) < empty:
        if required:
            raise DomainError(ReviewCode.TOO_FEW_EXPERTS,
                              f"{len(pool)} expert(s) of {review.field} are eligible for {empty} seat(s): add experts "
                              f"to the library or wait for a suspension to end.", "reviewId")
        _journal(session, clock, review, "short", actor, eligible=len(pool), empty=empty,
                 replacement=review.draws_done > 0)
        return None
    round_ = review.draws_done + 1
    before = {"status": review.status, "draws_done": review.draws_done}
    chosen = draws.pick(review.next_seed, review.id, round_, pool, empty)
    now = clock.now()
    draw = ReviewDraw(id=uuid.uuid4(), review_id=review.id, round=round_, seed=review.next_seed,
                      commitment=review.next_commitment, pool=pool, seats=empty, chosen=chosen, drawn_by=actor,
                      drawn_at=now)
    session.add(draw)
    for expert_id in chosen:
        session.add(ReviewSeat(id=uuid.uuid4(), review_id=review.id, expert_id=expert_id, round=round_,
                               status=SeatStatus.SEATED.value, drawn_at=now))
    seed = draws.new_seed()
    review.next_seed, review.next_commitment, review.draws_done = seed, draws.commitment(seed), round_
    review.status = ReviewStatus.DRAWN.value
    _journal(session, clock, review, "drawn", actor, round=round_, pool=len(pool),
             chosen=[str(c) for c in chosen], next_commitment=review.next_commitment, replacement=round_ > 1,
             before=before, after={"status": review.status, "draws_done": round_, "seats_drawn": empty})
    await session.flush()
    return draw


async def draw_experts(*, session: AsyncSession, clock: Clock, regulator_id: uuid.UUID, review_id: uuid.UUID) -> Review:
    """The regulator draws the review's experts (or refills seats left empty). Drawing again when
    every seat is filled changes nothing, so a retried call gets the same review."""
    review = await get_review(session=session, review_id=review_id, lock=True)
    if review.status == ReviewStatus.DECIDED.value:
        raise DomainError(ReviewCode.WRONG_STATUS, "This review is decided.", "reviewId")
    await _draw(session, clock, review, regulator_id, required=True)
    return review


async def _seat_of(session: AsyncSession, account_id: uuid.UUID, review_id: uuid.UUID) -> tuple[Review, ReviewSeat]:
    expert = await expert_of_account(session=session, account_id=account_id)
    review = await get_review(session=session, review_id=review_id, lock=True)
    seat = await session.scalar(select(ReviewSeat).where(ReviewSeat.review_id == review_id,
                                                         ReviewSeat.expert_id == expert.id)
                                .with_for_update().execution_options(populate_existing=True))
    if seat is None:
        # experts see only their own reviews
        raise NotFound(message="No review of yours has this id.", field="reviewId")
    if review.status != ReviewStatus.DRAWN.value:
        raise DomainError(ReviewCode.WRONG_STATUS, f"This review is {review.status}.", "reviewId")
    if seat.status != SeatStatus.SEATED.value:
        raise DomainError(ReviewCode.ALREADY_ANSWERED, f"You have {seat.status} this review.", "reviewId")
    return review, seat


async def submit_opinion(*, session: AsyncSession, clock: Clock, account_id: uuid.UUID, review_id: uuid.UUID,
                         opinion: Opinion, text: str) -> ReviewSeat:
    """A seated expert's opinion: pass, pass with changes, or fail, with the reasoning."""
    review, seat = await _seat_of(session, account_id, review_id)
    seat.opinion = Opinion(opinion).value
    seat.text = _reason(text, "text", CoreCode.INVALID, "reasoning of your opinion")
    seat.status, seat.answered_at = SeatStatus.ANSWERED.value, clock.now()
    _journal(session, clock, review, "answered", account_id, expert_id=str(seat.expert_id), opinion=seat.opinion,
             before={"seat": SeatStatus.SEATED.value}, after={"seat": seat.status, "opinion": seat.opinion})
    await session.flush()
    return seat


async def decline_seat(*, session: AsyncSession, clock: Clock, account_id: uuid.UUID, review_id: uuid.UUID,
                       reason: str) -> ReviewSeat:
    """A seated expert declines for a conflict; the seat is drawn again at once, the same way."""
    review, seat = await _seat_of(session, account_id, review_id)
    seat.text = _reason(reason, "reason", ReviewCode.REASON_REQUIRED, "conflict that keeps you from this review")
    seat.status, seat.answered_at = SeatStatus.DECLINED.value, clock.now()
    _journal(session, clock, review, "declined", account_id, expert_id=str(seat.expert_id),
             before={"seat": SeatStatus.SEATED.value}, after={"seat": seat.status})
    await session.flush()
    await _draw(session, clock, review, account_id, required=False)
    return seat


@dataclass(frozen=True)
class Tally:
    wanted: int
    answered: int
    outstanding: int
    opinions: dict[str, int]


async def tally(*, session: AsyncSession, review: Review) -> Tally:
    seats = [s for s in (await seats_of(session=session, review_ids=[review.id]))[review.id]
             if s.status != SeatStatus.DECLINED.value]
    answered = [s for s in seats if s.status == SeatStatus.ANSWERED.value]
    counts = {o.value: sum(1 for s in answered if s.opinion == o.value) for o in Opinion}
    return Tally(wanted=review.experts_wanted, answered=len(answered),
                 outstanding=review.experts_wanted - len(answered), opinions=counts)


async def decide_review(*, session: AsyncSession, clock: Clock, regulator_id: uuid.UUID, review_id: uuid.UUID,
                        approve: bool, reason: str) -> Review:
    """The regulator's decision, after every seat's opinion is in, with its reasons. Called by the
    flow that owns the subject, in its transaction."""
    review = await get_review(session=session, review_id=review_id, lock=True)
    if review.status == ReviewStatus.DECIDED.value:
        raise DomainError(ReviewCode.WRONG_STATUS, f"This review was decided: {review.decision}.", "reviewId")
    reason = _reason(reason, "reason", ReviewCode.REASON_REQUIRED, "reasons for the decision")
    counted = await tally(session=session, review=review)
    if review.status != ReviewStatus.DRAWN.value or counted.outstanding > 0:
        raise DomainError(ReviewCode.OPINIONS_OUTSTANDING,
                          f"{counted.answered} of {counted.wanted} experts' opinions are in; decide once all are.",
                          "reviewId")
    before = {"status": review.status}
    review.status = ReviewStatus.DECIDED.value
    review.decision = (Decision.APPROVED if approve else Decision.REFUSED).value
    review.decision_reason, review.decided_by, review.decided_at = reason, regulator_id, clock.now()
    _journal(session, clock, review, "decided", regulator_id, decision=review.decision, opinions=counted.opinions,
             before=before, after={"status": review.status, "decision": review.decision})
    await session.flush()
    return review


async def expert_seats(*, session: AsyncSession, account_id: uuid.UUID, first: int | None,
                       after: str | None) -> Page:
    """The caller's seats (an expert sees only the reviews they were drawn for), newest first."""
    expert_id = await session.scalar(select(Expert.id).where(Expert.account_id == account_id))
    stmt = select(ReviewSeat).where(ReviewSeat.expert_id == (expert_id or uuid.UUID(int=0)))
    return await keyset_page(session, stmt, keys=[ReviewSeat.drawn_at, ReviewSeat.id], descending=True,
                             first=first, after=after)


async def reviews_for_regulator(*, session: AsyncSession, status: ReviewStatus | None, first: int | None,
                                after: str | None) -> Page:
    stmt = select(Review)
    if status is not None:
        stmt = stmt.where(Review.status == ReviewStatus(status).value)
    return await keyset_page(session, stmt, keys=[Review.opened_at, Review.id], first=first, after=after)


async def draws_of(*, session: AsyncSession, review_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[ReviewDraw]]:
    found: dict[uuid.UUID, list[ReviewDraw]] = {i: [] for i in review_ids}
    for draw in await session.scalars(select(ReviewDraw).where(ReviewDraw.review_id.in_(review_ids))
                                      .order_by(ReviewDraw.round)):
        found[draw.review_id].append(draw)
    return found


async def journal(*, session: AsyncSession, review_id: uuid.UUID) -> list[ReviewEvent]:
    return list(await session.scalars(select(ReviewEvent).where(ReviewEvent.review_id == review_id)
                                      .order_by(ReviewEvent.seq)))


@dataclass(frozen=True)
class DrawCheck:
    round: int
    commitment_matches: bool
    choice_matches: bool

    @property
    def valid(self) -> bool:
        return self.commitment_matches and self.choice_matches


async def recheck_draws(*, session: AsyncSession, review_id: uuid.UUID) -> list[DrawCheck]:
    """Recompute every draw of a review from its public record (reviews/draws.py)."""
    await get_review(session=session, review_id=review_id)
    checks = []
    for d in (await draws_of(session=session, review_ids=[review_id]))[review_id]:
        commitment_ok, choice_ok = draws.recompute(seed=d.seed, published_commitment=d.commitment,
                                                   review_id=review_id, round_=d.round, pool=list(d.pool),
                                                   seats=d.seats, chosen=list(d.chosen))
        checks.append(DrawCheck(round=d.round, commitment_matches=commitment_ok, choice_matches=choice_ok))
    return checks

"""The technical review (art. 8, 13, 17): the expert library, draws, opinions, and the public,
re-checkable record of every draw."""

from __future__ import annotations

import uuid

import orjson
import strawberry
from sqlalchemy import select

from accounts.models import Role as R
from core.errors import NotFound
from resolvers.common import parse_id, parse_optional_id
from resolvers.runner import run_mutation
from reviews import experts, service
from reviews.models import Expert, Review, ReviewSeat
from schema import reviews as t
from schema.context import Context
from schema.pagination import Connection
from schema.permissions import Allow


async def seat_views(session, seats: list[ReviewSeat]) -> list[t.ReviewSeat]:
    by_id = {e.id: e for e in await session.scalars(select(Expert).where(Expert.id.in_({s.expert_id for s in seats})))}
    return [t.ReviewSeat.from_row(s, by_id[s.expert_id]) for s in seats]


async def review_views(session, rows: list[Review], ctx: Context) -> list[t.Review]:
    """Reviews as the caller may see them: every seat for the regulator, an expert's own seat for
    the expert, no seat for anyone else."""
    ids = [r.id for r in rows]
    draws = await service.draws_of(session=session, review_ids=ids)
    seats = await service.seats_of(session=session, review_ids=ids)
    principal = ctx.principal
    regulator = principal is not None and principal.has(R.REGULATOR.value)
    mine: uuid.UUID | None = None
    if not regulator and principal is not None and principal.has(R.EXPERT.value):
        mine = await session.scalar(select(Expert.id).where(Expert.account_id == principal.account_id))
    shown = {row.id: [s for s in seats[row.id] if regulator or (mine is not None and s.expert_id == mine)]
             for row in rows}
    # one look-up of the experts of every shown seat, whatever the number of reviews
    views = iter(await seat_views(session, [s for row in rows for s in shown[row.id]]))
    return [t.Review.from_row(row, draws=draws[row.id], seats=[next(views) for _ in shown[row.id]]) for row in rows]


async def _entries(session, rows: list[Expert]) -> list[t.ExpertEntry]:
    conflicts = await experts.conflicts_of(session=session, expert_ids=[r.id for r in rows])
    return [t.ExpertEntry.from_row(row, conflicts[row.id]) for row in rows]


async def _entry(session, row: Expert) -> t.ExpertEntry:
    return (await _entries(session, [row]))[0]


@strawberry.type
class ReviewsQuery:
    @strawberry.field(extensions=[Allow(anyone=True)],
                      description="The expert library, as the public sees it (art. 29): active experts by name, "
                                  "optionally of one field.")
    async def experts(self, info: strawberry.Info, field: str | None = None, first: int | None = None,
                      after: str | None = None) -> Connection[t.Expert]:
        ctx: Context = info.context
        async with ctx.reading() as session:
            page = await experts.public_experts(session=session, field=field, first=first, after=after)
        return Connection.from_page(page, t.Expert.from_row)

    @strawberry.field(extensions=[Allow(R.REGULATOR)],
                      description="The whole expert library with status and declared conflicts.")
    async def expert_library(self, info: strawberry.Info, first: int | None = None,
                             after: str | None = None) -> Connection[t.ExpertEntry]:
        ctx: Context = info.context
        async with ctx.reading() as session:
            page = await experts.library(session=session, first=first, after=after)
            views = dict(zip([i.node.id for i in page.items], await _entries(session, [i.node for i in page.items])))
        return Connection.from_page(page, lambda row: views[row.id])

    @strawberry.field(extensions=[Allow(anyone=True)],
                      description="A review's public record: subject, commitments, draws and decision; seats and "
                                  "opinions for the regulator and the seated experts.")
    async def review(self, info: strawberry.Info, id: strawberry.ID) -> t.Review | None:
        ctx: Context = info.context
        try:
            async with ctx.reading() as session:
                row = await service.get_review(session=session, review_id=parse_id(id))
                return (await review_views(session, [row], ctx))[0]
        except NotFound:
            return None

    @strawberry.field(extensions=[Allow(anyone=True)],
                      description="Recompute every draw of a review from its published seed and pool, and say "
                                  "whether the seed matches the commitment and the choice matches the record.")
    async def recheck_review_draws(self, info: strawberry.Info, review_id: strawberry.ID) -> list[t.ReviewDrawCheck]:
        ctx: Context = info.context
        try:
            async with ctx.reading() as session:
                checks = await service.recheck_draws(session=session, review_id=parse_id(review_id))
        except NotFound:
            return []
        return [t.ReviewDrawCheck.from_check(c) for c in checks]

    @strawberry.field(extensions=[Allow(R.EXPERT)],
                      description="The reviews the caller was drawn for, newest first: only their own.")
    async def my_review_seats(self, info: strawberry.Info, first: int | None = None,
                              after: str | None = None) -> Connection[t.ReviewSeat]:
        ctx: Context = info.context
        async with ctx.reading() as session:
            page = await service.expert_seats(session=session, account_id=ctx.principal.account_id, first=first,
                                              after=after)
            views = dict(zip([i.node.id for i in page.items], await seat_views(session, [i.node for i in page.items])))
        return Connection.from_page(page, lambda row: views[row.id])

    @strawberry.field(extensions=[Allow(R.REGULATOR)], description="Reviews by the time they opened, by status.")
    async def reviews_for_regulator(self, info: strawberry.Info, status: t.ReviewStatus | None = None,
                                    first: int | None = None, after: str | None = None) -> Connection[t.Review]:
        ctx: Context = info.context
        async with ctx.reading() as session:
            page = await service.reviews_for_regulator(session=session, status=status, first=first, after=after)
            views = dict(zip([i.node.id for i in page.items],
                             await review_views(session, [i.node for i in page.items], ctx)))
        return Connection.from_page(page, lambda row: views[row.id])

    @strawberry.field(extensions=[Allow(R.REGULATOR)], description="A review's journal: every step, who and when.")
    async def review_journal(self, info: strawberry.Info, review_id: strawberry.ID) -> list[t.ReviewEvent]:
        ctx: Context = info.context
        async with ctx.reading() as session:
            rows = await service.journal(session=session, review_id=parse_optional_id(review_id) or uuid.UUID(int=0))
        return [t.ReviewEvent(seq=r.seq, action=r.action, actor_id=strawberry.ID(str(r.actor_id)), at=r.at,
                              details=orjson.dumps(r.details).decode()) for r in rows]


@strawberry.type
class ReviewsMutation:
    @strawberry.mutation(extensions=[Allow(R.REGULATOR)],
                         description="Add a person to the expert library (art. 8); they sign in with the EXPERT role.")
    async def add_expert(self, info: strawberry.Info, input: t.AddExpertInput) -> t.AddExpertPayload:
        ctx: Context = info.context

        async def add(session) -> t.AddExpertPayload:
            row = await experts.add_expert(session=session, clock=ctx.clock, regulator_id=ctx.principal.account_id,
                                           account_id=parse_id(input.account_id, "accountId"), name=input.name,
                                           affiliation=input.affiliation, fields=list(input.fields))
            return t.AddExpertPayload(expert=await _entry(session, row))

        return await run_mutation(ctx, t.AddExpertPayload, add)

    @strawberry.mutation(extensions=[Allow(R.REGULATOR)],
                         description="Suspend or reinstate an expert, saying why; a suspended expert is never drawn.")
    async def set_expert_status(self, info: strawberry.Info, input: t.SetExpertStatusInput) -> t.SetExpertStatusPayload:
        ctx: Context = info.context

        async def set_(session) -> t.SetExpertStatusPayload:
            row = await experts.set_status(session=session, clock=ctx.clock, regulator_id=ctx.principal.account_id,
                                           expert_id=parse_id(input.expert_id, "expertId"), active=input.active,
                                           reason=input.reason)
            return t.SetExpertStatusPayload(expert=await _entry(session, row))

        return await run_mutation(ctx, t.SetExpertStatusPayload, set_)

    @strawberry.mutation(extensions=[Allow(R.EXPERT, R.REGULATOR)],
                         description="Declare an organisation an expert works for or with: the expert is never drawn "
                                     "where it is a party. Experts declare their own; the regulator names the expert.")
    async def declare_expert_conflict(self, info: strawberry.Info,
                                      input: t.DeclareExpertConflictInput) -> t.DeclareExpertConflictPayload:
        ctx: Context = info.context

        async def declare(session) -> t.DeclareExpertConflictPayload:
            if ctx.principal.has(R.REGULATOR.value) and input.expert_id is not None:
                expert_id = parse_id(input.expert_id, "expertId")
            else:
                expert_id = (await experts.expert_of_account(session=session, account_id=ctx.principal.account_id)).id
            row = await experts.declare_conflict(session=session, clock=ctx.clock,
                                                 declared_by=ctx.principal.account_id, expert_id=expert_id,
                                                 organisation_id=parse_id(input.organisation_id, "organisationId"),
                                                 note=input.note)
            return t.DeclareExpertConflictPayload(conflict=t.ExpertConflict.from_row(row))

        return await run_mutation(ctx, t.DeclareExpertConflictPayload, declare)

    @strawberry.mutation(extensions=[Allow(R.REGULATOR)],
                         description="Draw the review's experts at random among the eligible (art. 13, 17), revealing "
                                     "the committed seed; fills empty seats, and changes nothing when all are filled.")
    async def draw_review_experts(self, info: strawberry.Info,
                                  input: t.DrawReviewExpertsInput) -> t.DrawReviewExpertsPayload:
        ctx: Context = info.context

        async def draw(session) -> t.DrawReviewExpertsPayload:
            row = await service.draw_experts(session=session, clock=ctx.clock, regulator_id=ctx.principal.account_id,
                                             review_id=parse_id(input.review_id, "reviewId"))
            return t.DrawReviewExpertsPayload(review=(await review_views(session, [row], ctx))[0])

        return await run_mutation(ctx, t.DrawReviewExpertsPayload, draw)

    @strawberry.mutation(extensions=[Allow(R.EXPERT)],
                         description="A drawn expert's opinion: pass, pass with changes, or fail, with the reasoning.")
    async def submit_review_opinion(self, info: strawberry.Info,
                                    input: t.SubmitReviewOpinionInput) -> t.SubmitReviewOpinionPayload:
        ctx: Context = info.context

        async def submit(session) -> t.SubmitReviewOpinionPayload:
            seat = await service.submit_opinion(session=session, clock=ctx.clock, account_id=ctx.principal.account_id,
                                                review_id=parse_id(input.review_id, "reviewId"),
                                                opinion=input.opinion, text=input.text)
            return t.SubmitReviewOpinionPayload(seat=(await seat_views(session, [seat]))[0])

        return await run_mutation(ctx, t.SubmitReviewOpinionPayload, submit)

    @strawberry.mutation(extensions=[Allow(R.EXPERT)],
                         description="Decline a review for a conflict; a replacement is drawn at once, the same way.")
    async def decline_review(self, info: strawberry.Info, input: t.DeclineReviewInput) -> t.DeclineReviewPayload:
        ctx: Context = info.context

        async def decline(session) -> t.DeclineReviewPayload:
            seat = await service.decline_seat(session=session, clock=ctx.clock, account_id=ctx.principal.account_id,
                                              review_id=parse_id(input.review_id, "reviewId"), reason=input.reason)
            return t.DeclineReviewPayload(seat=(await seat_views(session, [seat]))[0])

        return await run_mutation(ctx, t.DeclineReviewPayload, decline)

"""GraphQL types of the technical review (art. 8, 13, 17): the expert library, reviews with their
re-checkable draws, the experts' seats and opinions."""

from __future__ import annotations

from datetime import datetime

import strawberry

from accounts.errors import AccountCode
from reviews import models
from reviews.errors import ReviewCode
from reviews.service import DrawCheck
from schema.errors import MutationError, error_codes

ReviewStatus = strawberry.enum(models.ReviewStatus, name="ReviewStatus",
                               description="open: the first draw's seed is committed. drawn: experts are seated. "
                                           "decided: the regulator decided, with reasons.")
ReviewSubjectKind = strawberry.enum(models.SubjectKind, name="ReviewSubjectKind")
ReviewDecision = strawberry.enum(models.Decision, name="ReviewDecision")
ReviewSeatStatus = strawberry.enum(models.SeatStatus, name="ReviewSeatStatus")
ExpertOpinion = strawberry.enum(models.Opinion, name="ExpertOpinion")


@strawberry.type(description="An expert of the regulator's library, as the public sees them (art. 29): name, fields "
                             "and affiliation.")
class Expert:
    id: strawberry.ID
    name: str
    fields: list[str] = strawberry.field(description="methodology, project_validation, reduction_verification, "
                                                     "scenario, or domain:<behaviour domain>.")
    affiliation: str

    @classmethod
    def from_row(cls, row: models.Expert) -> "Expert":
        return cls(id=strawberry.ID(str(row.id)), name=row.name, fields=list(row.fields), affiliation=row.affiliation)


@strawberry.type(description="A declared conflict: the expert is never drawn where this organisation is a party.")
class ExpertConflict:
    organisation_id: strawberry.ID
    note: str
    declared_at: datetime

    @classmethod
    def from_row(cls, row: models.ExpertConflict) -> "ExpertConflict":
        return cls(organisation_id=strawberry.ID(str(row.organisation_id)), note=row.note,
                   declared_at=row.declared_at)


@strawberry.type(description="An expert as the regulator sees them: status, account and declared conflicts.")
class ExpertEntry:
    expert: Expert
    account_id: strawberry.ID
    active: bool
    status_reason: str | None
    added_at: datetime
    conflicts: list[ExpertConflict]

    @classmethod
    def from_row(cls, row: models.Expert, conflicts: list[models.ExpertConflict]) -> "ExpertEntry":
        return cls(expert=Expert.from_row(row), account_id=strawberry.ID(str(row.account_id)),
                   active=row.status == models.ExpertStatus.ACTIVE.value, status_reason=row.status_reason,
                   added_at=row.added_at, conflicts=[ExpertConflict.from_row(c) for c in conflicts])


@strawberry.type(description="One draw, as recorded: with the seed it reveals and the pool in order, anyone can "
                             "recompute whom it chose (see recheckReviewDraws).")
class ReviewDraw:
    round: int
    commitment: str = strawberry.field(description="sha256 of the seed, published before the draw.")
    seed: str = strawberry.field(description="The seed, revealed at the draw (hex).")
    pool: list[strawberry.ID] = strawberry.field(description="The eligible experts' ids, in the order the draw used.")
    seats: int
    chosen: list[strawberry.ID]
    drawn_at: datetime

    @classmethod
    def from_row(cls, row: models.ReviewDraw) -> "ReviewDraw":
        return cls(round=row.round, commitment=row.commitment, seed=row.seed.hex(),
                   pool=[strawberry.ID(str(i)) for i in row.pool], seats=row.seats,
                   chosen=[strawberry.ID(str(i)) for i in row.chosen], drawn_at=row.drawn_at)


@strawberry.type(description="A drawn expert's seat: the opinion, or the declination for a conflict.")
class ReviewSeat:
    id: strawberry.ID
    review_id: strawberry.ID
    expert: Expert
    round: int
    status: ReviewSeatStatus
    opinion: ExpertOpinion | None
    text: str | None = strawberry.field(description="The opinion's reasoning, or the conflict declined for.")
    drawn_at: datetime
    answered_at: datetime | None

    @classmethod
    def from_row(cls, row: models.ReviewSeat, expert: models.Expert) -> "ReviewSeat":
        return cls(id=strawberry.ID(str(row.id)), review_id=strawberry.ID(str(row.review_id)),
                   expert=Expert.from_row(expert), round=row.round, status=models.SeatStatus(row.status),
                   opinion=models.Opinion(row.opinion) if row.opinion else None, text=row.text,
                   drawn_at=row.drawn_at, answered_at=row.answered_at)


@strawberry.type(description="A technical review: its subject, the committed seed of the next draw, the draws, and "
                             "the decision. Seats and opinions are shown to the regulator and to the seated experts "
                             "(each their own); the public sees the draws and the decision.")
class Review:
    id: strawberry.ID
    subject_kind: ReviewSubjectKind
    subject_id: strawberry.ID
    field: str
    experts_wanted: int
    status: ReviewStatus
    next_commitment: str = strawberry.field(description="sha256 of the seed the next draw (or replacement) will use.")
    draws: list[ReviewDraw]
    seats: list[ReviewSeat]
    opened_at: datetime
    decision: ReviewDecision | None
    decision_reason: str | None
    decided_at: datetime | None

    @classmethod
    def from_row(cls, row: models.Review, *, draws: list[models.ReviewDraw], seats: list[ReviewSeat]) -> "Review":
        return cls(id=strawberry.ID(str(row.id)), subject_kind=models.SubjectKind(row.subject_kind),
                   subject_id=strawberry.ID(str(row.subject_id)), field=row.field, experts_wanted=row.experts_wanted,
                   status=models.ReviewStatus(row.status), next_commitment=row.next_commitment,
                   draws=[ReviewDraw.from_row(d) for d in draws], seats=seats, opened_at=row.opened_at,
                   decision=models.Decision(row.decision) if row.decision else None,
                   decision_reason=row.decision_reason, decided_at=row.decided_at)


@strawberry.type(description="One draw recomputed from its public record.")
class ReviewDrawCheck:
    round: int
    commitment_matches: bool = strawberry.field(description="sha256(seed) is the commitment published before.")
    choice_matches: bool = strawberry.field(description="The seed and pool give exactly the experts recorded.")
    valid: bool

    @classmethod
    def from_check(cls, check: DrawCheck) -> "ReviewDrawCheck":
        return cls(round=check.round, commitment_matches=check.commitment_matches,
                   choice_matches=check.choice_matches, valid=check.valid)


@strawberry.type(description="One step of a review's journal: who did what, when.")
class ReviewEvent:
    seq: int
    action: str
    actor_id: strawberry.ID
    at: datetime
    details: str = strawberry.field(description="The step's details as JSON.")


@strawberry.input
class AddExpertInput:
    account_id: strawberry.ID = strawberry.field(description="The person's account the expert signs in with.")
    name: str
    affiliation: str
    fields: list[str]


@strawberry.input
class SetExpertStatusInput:
    expert_id: strawberry.ID
    active: bool
    reason: str


@strawberry.input
class DeclareExpertConflictInput:
    organisation_id: strawberry.ID
    note: str | None = None
    expert_id: strawberry.ID | None = strawberry.field(
        default=None, description="The regulator names the expert; an expert declares their own (leave it out).")


@strawberry.input
class DrawReviewExpertsInput:
    review_id: strawberry.ID


@strawberry.input
class SubmitReviewOpinionInput:
    review_id: strawberry.ID
    opinion: ExpertOpinion
    text: str


@strawberry.input
class DeclineReviewInput:
    review_id: strawberry.ID
    reason: str = strawberry.field(description="The conflict that keeps you from this review.")


AddExpertErrorCode = error_codes("AddExpertErrorCode", ReviewCode.NOT_AN_EXPERT, ReviewCode.ALREADY_AN_EXPERT,
                                 ReviewCode.INVALID_FIELD, AccountCode.ROLE_NOT_ALLOWED)


@strawberry.type
class AddExpertError(MutationError):
    code: AddExpertErrorCode


@strawberry.type
class AddExpertPayload:
    expert: ExpertEntry | None = None
    errors: list[AddExpertError] = strawberry.field(default_factory=list)


SetExpertStatusErrorCode = error_codes("SetExpertStatusErrorCode")


@strawberry.type
class SetExpertStatusError(MutationError):
    code: SetExpertStatusErrorCode


@strawberry.type
class SetExpertStatusPayload:
    expert: ExpertEntry | None = None
    errors: list[SetExpertStatusError] = strawberry.field(default_factory=list)


DeclareExpertConflictErrorCode = error_codes("DeclareExpertConflictErrorCode", ReviewCode.NOT_AN_EXPERT)


@strawberry.type
class DeclareExpertConflictError(MutationError):
    code: DeclareExpertConflictErrorCode


@strawberry.type
class DeclareExpertConflictPayload:
    conflict: ExpertConflict | None = None
    errors: list[DeclareExpertConflictError] = strawberry.field(default_factory=list)


DrawReviewExpertsErrorCode = error_codes("DrawReviewExpertsErrorCode", ReviewCode.WRONG_STATUS,
                                         ReviewCode.TOO_FEW_EXPERTS)


@strawberry.type
class DrawReviewExpertsError(MutationError):
    code: DrawReviewExpertsErrorCode


@strawberry.type
class DrawReviewExpertsPayload:
    review: Review | None = None
    errors: list[DrawReviewExpertsError] = strawberry.field(default_factory=list)


SubmitReviewOpinionErrorCode = error_codes("SubmitReviewOpinionErrorCode", ReviewCode.WRONG_STATUS,
                                           ReviewCode.ALREADY_ANSWERED, ReviewCode.NOT_AN_EXPERT)


@strawberry.type
class SubmitReviewOpinionError(MutationError):
    code: SubmitReviewOpinionErrorCode


@strawberry.type
class SubmitReviewOpinionPayload:
    seat: ReviewSeat | None = None
    errors: list[SubmitReviewOpinionError] = strawberry.field(default_factory=list)


# TOO_FEW_EXPERTS: the replacement draw after a declination leaves the seat empty instead, but the
# draw it shares with drawReviewExperts can say so
DeclineReviewErrorCode = error_codes("DeclineReviewErrorCode", ReviewCode.WRONG_STATUS, ReviewCode.ALREADY_ANSWERED,
                                     ReviewCode.NOT_AN_EXPERT, ReviewCode.REASON_REQUIRED, ReviewCode.TOO_FEW_EXPERTS)


@strawberry.type
class DeclineReviewError(MutationError):
    code: DeclineReviewErrorCode


@strawberry.type
class DeclineReviewPayload:
    seat: ReviewSeat | None = None
    errors: list[DeclineReviewError] = strawberry.field(default_factory=list)

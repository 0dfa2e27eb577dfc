"""Offers of CERs (art. 18): a holder's whole tonnes of one project and vintage at a price per tonne in fen.

Only held tonnes not yet promised to another active offer of the holder can be offered
(`free_tonnes`); offering and retiring them take turns on one lock per holder, project and vintage
(`lock_free_tonnes`). An offer's row is locked (`lock_offer`) before any blocks it names:
order row -> offer row -> blocks. When a holder loses tonnes without selling them (the regulator's
cancellation, neutrality/cers/projects.py), its offers are trimmed to what it still holds."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import Clock
from core.errors import CoreCode, DomainError, NotFound
from core.locks import lock_name
from neutrality.cers import verification
from neutrality.cers.blocks import MAX_TONNES
from neutrality.cers.models import Block, BlockState, Project, ProjectStatus
from neutrality.errors import MarketCode
from neutrality.market.models import Offer, OfferStatus

MAX_PRICE_PER_TONNE_FEN = 100_000_000  # 1,000,000 yuan a tonne


class OfferNotActive(DomainError):
    code = MarketCode.OFFER_NOT_ACTIVE.value


async def lock_free_tonnes(session: AsyncSession, holder_id: uuid.UUID, project_id: uuid.UUID, vintage: int) -> None:
    """Offering and retiring a holder's free tonnes of one project and vintage take turns."""
    await lock_name(session, f"cer-offer:{holder_id}:{project_id}:{vintage}")


async def free_tonnes(*, session: AsyncSession, holder_id: uuid.UUID, project_id: uuid.UUID, vintage: int) -> int:
    """Held tonnes of one project and vintage not yet promised to an active offer of the holder."""
    size = Block.last_serial - Block.first_serial + 1
    held = await session.scalar(select(func.coalesce(func.sum(size), 0)).where(
        Block.holder_id == holder_id, Block.project_id == project_id, Block.vintage == vintage,
        Block.state == BlockState.HELD.value, Block.ended_at.is_(None)))
    offered = await session.scalar(select(func.coalesce(func.sum(Offer.quantity_available), 0)).where(
        Offer.seller_id == holder_id, Offer.project_id == project_id, Offer.vintage == vintage,
        Offer.status == OfferStatus.ACTIVE.value))
    return int(held) - int(offered)


async def create_offer(*, session: AsyncSession, clock: Clock, seller_id: uuid.UUID, project_id: uuid.UUID,
                       vintage: int, quantity: int, price_per_tonne_fen: int, min_purchase: int = 1) -> Offer:
    """Offer whole tonnes the seller holds and has not offered yet, at a price per tonne in fen."""
    if not 1 <= quantity <= MAX_TONNES:
        raise DomainError(CoreCode.INVALID, f"Offer 1 to {MAX_TONNES:,} whole tonnes.", "quantity")
    if not 1 <= price_per_tonne_fen <= MAX_PRICE_PER_TONNE_FEN:
        raise DomainError(MarketCode.INVALID_PRICE, "The price per tonne is 1 fen to 1,000,000 yuan, in fen.",
                          "pricePerTonneFen")
    if not 1 <= min_purchase <= quantity:
        raise DomainError(CoreCode.INVALID, "The minimum purchase is 1 tonne up to the quantity offered.",
                          "minPurchase")
    project = await session.get(Project, project_id)
    if project is None or project.status != ProjectStatus.FILED.value:
        raise NotFound(message="No filed project has this id.", field="projectId")
    await verification.refuse_trade_if_frozen(session, project_id, "projectId")
    # one offer (or retirement) at a time per seller, project and vintage: the check below stays true
    await lock_free_tonnes(session, seller_id, project_id, vintage)
    free = await free_tonnes(session=session, holder_id=seller_id, project_id=project_id, vintage=vintage)
    if quantity > free:
        raise DomainError(MarketCode.INSUFFICIENT_TONNES,
                          f"You hold {max(free, 0)} tonnes of this project and vintage that are not on offer yet.",
                          "quantity")
    now = clock.now()
    offer = Offer(seller_id=seller_id, project_id=project_id, vintage=vintage, price_per_tonne_fen=price_per_tonne_fen,
                  quantity_offered=quantity, quantity_available=quantity, min_purchase=min_purchase,
                  status=OfferStatus.ACTIVE.value, created_at=now, updated_at=now)
    session.add(offer)
    await session.flush()
    return offer


async def lock_offer(session: AsyncSession, offer_id: uuid.UUID) -> Offer | None:
    """The offer's row, locked until commit and read afresh (lock order: order row -> offer row -> blocks)."""
    return (await session.execute(select(Offer).where(Offer.id == offer_id).with_for_update()
                                  .execution_options(populate_existing=True))).scalar_one_or_none()


async def withdraw_offer(*, session: AsyncSession, clock: Clock, seller_id: uuid.UUID, offer_id: uuid.UUID) -> Offer:
    """Take an offer off the market. Orders already reserved still settle (or are released)."""
    offer = await lock_offer(session, offer_id)
    if offer is None or offer.seller_id != seller_id:
        raise NotFound(message="No offer of yours has this id.", field="id")
    if offer.status != OfferStatus.ACTIVE.value:
        raise OfferNotActive(message="This offer is already withdrawn.", field="id")
    offer.status = OfferStatus.WITHDRAWN.value
    offer.updated_at = clock.now()
    await session.flush()
    return offer


async def lock_active_offers(session: AsyncSession, seller_ids: list[uuid.UUID], project_id: uuid.UUID,
                             vintage: int) -> None:
    """Lock the sellers' active offers of one project and vintage, in id order, before their blocks."""
    await session.execute(select(Offer.id).where(
        Offer.seller_id.in_(seller_ids), Offer.project_id == project_id, Offer.vintage == vintage,
        Offer.status == OfferStatus.ACTIVE.value).order_by(Offer.id).with_for_update())


async def trim_to_holdings(session: AsyncSession, clock: Clock, holder_id: uuid.UUID, project_id: uuid.UUID,
                           vintage: int) -> None:
    """A holder's offers never promise more than it still holds: trim the newest first."""
    excess = -await free_tonnes(session=session, holder_id=holder_id, project_id=project_id, vintage=vintage)
    if excess <= 0:
        return
    offers = (await session.scalars(select(Offer).where(
        Offer.seller_id == holder_id, Offer.project_id == project_id, Offer.vintage == vintage,
        Offer.status == OfferStatus.ACTIVE.value).order_by(Offer.created_at.desc()))).all()
    for offer in offers:
        cut = min(excess, offer.quantity_available)
        offer.quantity_available -= cut
        offer.updated_at = clock.now()
        excess -= cut
        if excess == 0:
            break
    await session.flush()


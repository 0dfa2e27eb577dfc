"""Accounts, roles, sessions, API keys and entrustments."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator, Awaitable, Callable, TypeVar

import orjson
import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from accounts import service
from accounts.errors import AccountCode
from accounts.models import ApiKeyScope as S
from accounts.models import Role as R
from accounts.security import keyed_hash
from accounts.service import RefreshRefused, SignedIn
from core.errors import DomainError
from mall import catalog_cache
from resolvers.common import parse_id
from resolvers.runner import Idempotency, run_mutation
from schema import accounts as t
from schema.context import Context
from schema.errors import payload_error
from schema.pagination import Connection
from schema.permissions import Allow, ChecksCredentials
from accounts import revocation
from accounts import sign_in_throttle as throttle
from supervision import violations

P = TypeVar("P")


async def _account(session: AsyncSession, account_id) -> t.Account:
    row = await service.get_account(session=session, account_id=account_id)
    return t.Account.from_row(row, await service.roles_of(session=session, account_id=row.id))


async def _session_type(session: AsyncSession, signed_in: SignedIn) -> t.Session:
    return t.Session(
        access_token=signed_in.access_token, access_token_expires_at=signed_in.access_token_expires_at,
        refresh_token=signed_in.refresh_token, refresh_token_expires_at=signed_in.refresh_token_expires_at,
        account=await _account(session, signed_in.account.id),
    )


def _ctx(info: strawberry.Info) -> Context:
    return info.context


@asynccontextmanager
async def _throttled(ctx: Context, attempt: throttle.Attempt) -> AsyncIterator[None]:
    """The sign-in throttle around a password check (a mutation's guard): a barred attempt is
    refused before any argon2 work; a wrong password counts (and says how long to wait when a
    delay now applies); a right one clears this IP's count for the login."""
    await throttle.check(redis=ctx.redis, clock=ctx.clock, attempt=attempt)
    try:
        yield
    except DomainError as refused:
        if refused.code == AccountCode.INVALID_CREDENTIALS:
            refused.retry_after = await throttle.record_failure(redis=ctx.redis, clock=ctx.clock, attempt=attempt) or None
        raise
    await throttle.record_success(redis=ctx.redis, clock=ctx.clock, attempt=attempt)


def _revoking(ctx: Context, answer: Callable[[list], P]) -> Callable[[list], Awaitable[P]]:
    """After commit: the access tokens of the session families just ended stop working now."""
    async def then(families: list) -> P:
        await revocation.mark_families_revoked(ctx.redis, families, ctx.settings.access_token_ttl_seconds)
        return answer(families)

    return then


@strawberry.type
class AccountsQuery:
    @strawberry.field(extensions=[Allow(signed_in=True)], description="The caller's own account and roles.")
    async def me(self, info: strawberry.Info) -> t.Account | None:
        ctx = _ctx(info)
        async with ctx.reading() as session:
            return await _account(session, ctx.principal.account_id)

    @strawberry.field(extensions=[Allow(signed_in=True)],
                      description="An account by id: the regulator sees any; anyone else only their own (else null).")
    async def account(self, info: strawberry.Info, id: strawberry.ID) -> t.Account | None:
        ctx = _ctx(info)
        try:
            account_id = parse_id(id)
        except DomainError:
            return None
        if account_id != ctx.principal.account_id and not ctx.principal.has(R.REGULATOR.value):
            return None
        async with ctx.reading() as session:
            try:
                return await _account(session, account_id)
            except DomainError:
                return None

    @strawberry.field(extensions=[Allow(R.REGULATOR)], description="Applications for the operator, merchant and project-owner roles.")
    async def role_applications(
        self, info: strawberry.Info, status: t.RoleStatus | None = None, role: t.Role | None = None,
        first: int | None = None, after: str | None = None,
    ) -> Connection[t.RoleApplication]:
        ctx = _ctx(info)
        async with ctx.reading() as session:
            page = await service.list_role_applications(
                session=session, status=status.value if status else None, role=role.value if role else None,
                first=first, after=after)
            names = await service.account_names(session=session, ids=[i.node.account_id for i in page.items])
            return Connection.from_page(page, lambda row: t.RoleApplication.from_row(row, names))

    @strawberry.field(extensions=[Allow(anyone=True)], description="Approved app operators a person can entrust.")
    async def app_operators(self, info: strawberry.Info, first: int | None = None,
                            after: str | None = None) -> Connection[t.AppOperator]:
        async with _ctx(info).reading() as session:
            page = await service.list_operators(session=session, first=first, after=after)
            return Connection.from_page(page, lambda row: t.AppOperator(id=strawberry.ID(str(row.id)),
                                                                         display_name=row.display_name))

    @strawberry.field(extensions=[Allow(R.APP_OPERATOR, R.MERCHANT, R.PROJECT_OWNER)],
                      description="The caller organisation's API keys (never their secrets).")
    async def my_api_keys(self, info: strawberry.Info) -> list[t.ApiKey]:
        ctx = _ctx(info)
        async with ctx.reading() as session:
            keys = await service.list_api_keys(session=session, account_id=ctx.principal.account_id)
            return [t.ApiKey.from_row(k) for k in keys]

    @strawberry.field(extensions=[Allow(R.INDIVIDUAL)], description="The app operators this person has entrusted.")
    async def my_entrustments(
        self, info: strawberry.Info, status: t.EntrustmentStatus | None = None, first: int | None = None,
        after: str | None = None,
    ) -> Connection[t.Entrustment]:
        ctx = _ctx(info)
        async with ctx.reading() as session:
            page = await service.list_entrustments(
                session=session, individual_id=ctx.principal.account_id, status=status.value if status else None,
                first=first, after=after)
            names = await service.account_names(session=session,
                                                ids=[i.node.operator_account_id for i in page.items])
            return Connection.from_page(page, lambda row: t.Entrustment.from_row(row, names))

    @strawberry.field(extensions=[Allow(R.APP_OPERATOR)], description="This operator's entrustments, by its own user ids.")
    async def operator_entrustments(
        self, info: strawberry.Info, status: t.EntrustmentStatus | None = None, first: int | None = None,
        after: str | None = None,
    ) -> Connection[t.OperatorEntrustment]:
        ctx = _ctx(info)
        async with ctx.reading() as session:
            page = await service.list_entrustments(
                session=session, operator_id=ctx.principal.account_id, status=status.value if status else None,
                first=first, after=after)
            return Connection.from_page(page, t.OperatorEntrustment.from_row)

    @strawberry.field(extensions=[Allow(R.APP_OPERATOR)],
                      description="The active entrustment for one of this operator's users, or null: the operator may act for the person only while it exists.")
    async def entrusted_user(self, info: strawberry.Info, external_user_id: str) -> t.OperatorEntrustment | None:
        ctx = _ctx(info)
        async with ctx.reading() as session:
            row = await service.entrusted_individual(session=session, operator_id=ctx.principal.account_id,
                                                     external_user_id=external_user_id)
            return t.OperatorEntrustment.from_row(row) if row else None


@strawberry.type
class AccountsMutation:
    @strawberry.mutation(extensions=[Allow(anyone=True), ChecksCredentials()],
                         description="Individuals and organisations sign up themselves; operator and merchant roles wait for the regulator.")
    async def sign_up(self, info: strawberry.Info, input: t.SignUpInput) -> t.SignUpPayload:
        ctx = _ctx(info)

        @asynccontextmanager
        async def quota():
            # counted before the password is hashed (argon2 is the expensive part)
            wait = await throttle.sign_up_allowed(redis=ctx.redis, clock=ctx.clock, client_ip=ctx.client_ip,
                                                  per_hour=ctx.settings.sign_ups_per_ip_per_hour)
            if wait:
                raise throttle.TooManyAttempts(wait, "Too many sign-ups from this address.")
            yield

        async def create(session) -> dict:
            account = await service.sign_up(
                session=session, clock=ctx.clock, hashing=ctx.services.hashing,
                personal_data_key=ctx.settings.personal_data_key, kind=input.kind.value,
                display_name=input.display_name, password=input.password, email=input.email,
                phone=input.phone, national_id=input.national_id,
                apply_for=[r.value for r in input.apply_for or []],
                application_note=input.application_note)
            return {"account_id": str(account.id)}

        async def answer(session, result: dict) -> t.SignUpPayload:
            return t.SignUpPayload(account=await _account(session, parse_id(result["account_id"])))

        idempotency = None
        if input.idempotency_key is not None:
            secret, pii = ctx.settings.secret_key, ctx.settings.personal_data_key
            # a replay reaches only the same caller with the same whole input: the records of
            # anonymous callers are scoped by who they say they are, and the fingerprint covers
            # the password and identity number as keyed hashes (never the values themselves)
            request = {"kind": input.kind.value, "displayName": input.display_name,
                       "email": input.email, "phone": input.phone,
                       "applyFor": [r.value for r in input.apply_for or []],
                       "applicationNote": input.application_note,
                       "password": keyed_hash(secret, "signUp.password:" + input.password),
                       "nationalId": keyed_hash(pii, input.national_id) if input.national_id else None}
            scope = keyed_hash(secret, "signUp.contact:" + orjson.dumps([input.email, input.phone]).decode())
            idempotency = Idempotency("signUp", input.idempotency_key, request, anonymous_scope=scope)
        return await run_mutation(ctx, t.SignUpPayload, create, answer=answer, idempotency=idempotency, guard=quota)

    @strawberry.mutation(extensions=[Allow(anyone=True), ChecksCredentials()],
                         description="Sign in with email or phone and password.")
    async def login(self, info: strawberry.Info, input: t.LoginInput) -> t.LoginPayload:
        ctx = _ctx(info)
        attempt = throttle.Attempt.of(secret=ctx.settings.secret_key, client_ip=ctx.client_ip,
                                      login=service.login_identity(input.login) or "?" + input.login.strip().lower())

        async def sign_in(session) -> t.LoginPayload:
            signed_in = await service.login(
                session=session, clock=ctx.clock, hashing=ctx.services.hashing,
                secret=ctx.settings.secret_key, login=input.login, password=input.password,
                access_ttl=ctx.settings.access_token_ttl_seconds,
                refresh_ttl=ctx.settings.refresh_token_ttl_seconds)
            return t.LoginPayload(session=await _session_type(session, signed_in))

        return await run_mutation(ctx, t.LoginPayload, sign_in, guard=lambda: _throttled(ctx, attempt))

    @strawberry.mutation(extensions=[Allow(anyone=True), ChecksCredentials()],
                         description="Trade a refresh token for a new session; each refresh token works once.")
    async def refresh_session(self, info: strawberry.Info, input: t.RefreshSessionInput) -> t.RefreshSessionPayload:
        ctx = _ctx(info)
        attempt = throttle.Attempt.of(secret=ctx.settings.secret_key, client_ip=ctx.client_ip, login=None)

        @asynccontextmanager
        async def barred():
            await throttle.check(redis=ctx.redis, clock=ctx.clock, attempt=attempt)
            yield

        async def refresh(session) -> t.RefreshSessionPayload | RefreshRefused:
            outcome = await service.refresh(
                session=session, clock=ctx.clock, secret=ctx.settings.secret_key,
                refresh_token=input.refresh_token, access_ttl=ctx.settings.access_token_ttl_seconds,
                refresh_ttl=ctx.settings.refresh_token_ttl_seconds)
            if isinstance(outcome, SignedIn):
                return t.RefreshSessionPayload(session=await _session_type(session, outcome))
            return outcome

        async def then(outcome: t.RefreshSessionPayload | RefreshRefused) -> t.RefreshSessionPayload:
            if not isinstance(outcome, RefreshRefused):
                return outcome
            # refused: any revocation it made is committed above, and its access tokens die now
            if outcome.revoked_family_id is not None:
                await revocation.mark_families_revoked(ctx.redis, [outcome.revoked_family_id],
                                                       ctx.settings.access_token_ttl_seconds)
            wait = None
            if outcome.code == AccountCode.INVALID_REFRESH_TOKEN:  # a token nobody issued: a guess
                wait = await throttle.record_failure(redis=ctx.redis, clock=ctx.clock, attempt=attempt) or None
            return t.RefreshSessionPayload(errors=[payload_error(t.RefreshSessionError, outcome.code, outcome.message,
                                                                 "refreshToken", wait)])

        return await run_mutation(ctx, t.RefreshSessionPayload, refresh, then=then, guard=barred)

    @strawberry.mutation(extensions=[Allow(signed_in=True, password_session=True)],
                         description="Sign out: the refresh token and the access tokens of this session stop working.")
    async def logout(self, info: strawberry.Info, input: t.LogoutInput | None = None) -> t.LogoutPayload:
        ctx = _ctx(info)

        async def sign_out(session) -> list:
            return await service.logout(session=session, clock=ctx.clock, account_id=ctx.principal.account_id,
                                        family_id=ctx.principal.family_id, everywhere=bool(input and input.everywhere))

        return await run_mutation(ctx, t.LogoutPayload, sign_out, then=_revoking(
            ctx, lambda families: t.LogoutPayload(revoked_sessions=len(families))))

    @strawberry.mutation(extensions=[Allow(signed_in=True, password_session=True), ChecksCredentials()],
                         description="Change your password; every other session of the account is signed out.")
    async def change_password(self, info: strawberry.Info, input: t.ChangePasswordInput) -> t.ChangePasswordPayload:
        ctx = _ctx(info)
        attempt = throttle.Attempt.of(secret=ctx.settings.secret_key, client_ip=ctx.client_ip,
                                      login=f"account:{ctx.principal.account_id}")

        async def change(session) -> list:
            return await service.change_password(
                session=session, clock=ctx.clock, hashing=ctx.services.hashing, account_id=ctx.principal.account_id,
                current_password=input.current_password, new_password=input.new_password,
                keep_family_id=ctx.principal.family_id)

        return await run_mutation(ctx, t.ChangePasswordPayload, change, guard=lambda: _throttled(ctx, attempt),
                                  then=_revoking(ctx, lambda families: t.ChangePasswordPayload(
                                      signed_out_sessions=len(families))))

    @strawberry.mutation(extensions=[Allow(R.ORGANISATION, password_session=True)],
                         description="An organisation applies to be an app operator, merchant or project owner.")
    async def apply_for_role(self, info: strawberry.Info, input: t.ApplyForRoleInput) -> t.ApplyForRolePayload:
        ctx = _ctx(info)

        async def apply(session) -> t.ApplyForRolePayload:
            row = await service.apply_for_role(session=session, clock=ctx.clock, account_id=ctx.principal.account_id,
                                               role=input.role.value, note=input.note)
            return t.ApplyForRolePayload(application=t.RoleGrant.from_row(row))

        return await run_mutation(ctx, t.ApplyForRolePayload, apply)

    @strawberry.mutation(extensions=[Allow(R.REGULATOR, password_session=True)],
                         description="Approve or reject a role application (art. 6, 24).")
    async def decide_role_application(
        self, info: strawberry.Info, input: t.DecideRoleApplicationInput,
    ) -> t.DecideRoleApplicationPayload:
        ctx = _ctx(info)

        async def decide(session) -> t.DecideRoleApplicationPayload:
            row = await service.decide_role_application(
                session=session, clock=ctx.clock, regulator_id=ctx.principal.account_id,
                application_id=parse_id(input.application_id, "applicationId"), approve=input.approve,
                reason=input.reason)
            names = await service.account_names(session=session, ids=[row.account_id])
            return t.DecideRoleApplicationPayload(application=t.RoleApplication.from_row(row, names))

        return await run_mutation(ctx, t.DecideRoleApplicationPayload, decide)

    @strawberry.mutation(extensions=[Allow(R.REGULATOR, password_session=True)],
                         description="Grant a role no one applies for, active at once: NEUTRALITY_REVIEWER to a person "
                                     "(art. 19). Granting an active role again gives the same answer. Withdraw it "
                                     "with revokeRole. Audited.")
    async def grant_role(self, info: strawberry.Info, input: t.GrantRoleInput) -> t.GrantRolePayload:
        ctx = _ctx(info)

        async def grant(session) -> t.GrantRolePayload:
            if input.role != R.NEUTRALITY_REVIEWER:
                # an EXPERT is granted by addExpert, which also enters the person in the expert library (art. 8)
                raise DomainError(AccountCode.ROLE_NOT_ALLOWED, "Only NEUTRALITY_REVIEWER is granted here.", "role")
            row = await service.grant_role(session=session, clock=ctx.clock, regulator_id=ctx.principal.account_id,
                                           account_id=parse_id(input.account_id, "accountId"), role=input.role.value,
                                           note=input.note)
            names = await service.account_names(session=session, ids=[row.account_id])
            return t.GrantRolePayload(grant=t.RoleApplication.from_row(row, names))

        return await run_mutation(ctx, t.GrantRolePayload, grant)

    @strawberry.mutation(extensions=[Allow(R.REGULATOR, password_session=True)],
                         description="Withdraw an active role, e.g. an operator's registration; its tokens and keys stop at once.")
    async def revoke_role(self, info: strawberry.Info, input: t.RevokeRoleInput) -> t.RevokeRolePayload:
        ctx = _ctx(info)

        async def revoke(session) -> tuple[t.RevokeRolePayload, list, dict | None]:
            # every revocation goes this one way: a revoked merchant's listings (an app operator's app
            # mall) are archived in the same transaction (supervision/violations.py)
            # its sessions end there too: signing in again yields a token without the role
            row, families = await violations.revoke_role(
                session=session, clock=ctx.clock, regulator_id=ctx.principal.account_id,
                application_id=parse_id(input.application_id, "applicationId"), reason=input.reason)
            names = await service.account_names(session=session, ids=[row.account_id])
            return (t.RevokeRolePayload(application=t.RoleApplication.from_row(row, names)), families,
                    violations.role_releases(row.account_id, row.role))

        async def then(revoked: tuple[t.RevokeRolePayload, list, dict | None]) -> t.RevokeRolePayload:
            answer, families, whose = revoked
            await revocation.mark_families_revoked(ctx.redis, families, ctx.settings.access_token_ttl_seconds)
            await revocation.forget_cached_api_keys(ctx.redis)
            if whose is not None:  # its listings left the catalogue; its held redemptions go back to their lots
                await catalog_cache.invalidate(ctx.redis)
                await violations.release_held_redemptions(session_factory=ctx.services.session_factory,
                                                          clock=ctx.clock, whose=whose, until=None)
            return answer

        return await run_mutation(ctx, t.RevokeRolePayload, revoke, then=then)

    @strawberry.mutation(extensions=[Allow(R.APP_OPERATOR, R.MERCHANT, R.PROJECT_OWNER, password_session=True)],
                         description="Create an API key for the caller's organisation. The secret is returned only now.")
    async def create_api_key(self, info: strawberry.Info, input: t.CreateApiKeyInput) -> t.CreateApiKeyPayload:
        ctx = _ctx(info)

        async def create(session) -> t.CreateApiKeyPayload:
            key, secret = await service.create_api_key(session=session, clock=ctx.clock,
                                                       secret=ctx.settings.secret_key, principal=ctx.principal,
                                                       name=input.name, scopes=[scope.value for scope in input.scopes])
            return t.CreateApiKeyPayload(api_key=t.ApiKey.from_row(key), secret=secret)

        return await run_mutation(ctx, t.CreateApiKeyPayload, create)

    @strawberry.mutation(extensions=[Allow(R.APP_OPERATOR, R.MERCHANT, R.PROJECT_OWNER, password_session=True)],
                         description="Revoke one of the organisation's API keys; it stops working at once.")
    async def revoke_api_key(self, info: strawberry.Info, input: t.RevokeApiKeyInput) -> t.RevokeApiKeyPayload:
        ctx = _ctx(info)

        async def revoke(session) -> t.RevokeApiKeyPayload:
            key = await service.revoke_api_key(session=session, clock=ctx.clock,
                                               account_id=ctx.principal.account_id, api_key_id=parse_id(input.id))
            return t.RevokeApiKeyPayload(api_key=t.ApiKey.from_row(key))

        async def then(answer: t.RevokeApiKeyPayload) -> t.RevokeApiKeyPayload:
            await revocation.forget_cached_api_keys(ctx.redis)
            return answer

        return await run_mutation(ctx, t.RevokeApiKeyPayload, revoke, then=then)

    @strawberry.mutation(extensions=[Allow(R.APP_OPERATOR, scope=S.INVITE_ENTRUSTMENTS)],
                         description="Get a one-time code (valid 15 minutes) for one of the operator's users to entrust it.")
    async def create_entrustment_invitation(
        self, info: strawberry.Info, input: t.CreateEntrustmentInvitationInput,
    ) -> t.CreateEntrustmentInvitationPayload:
        ctx = _ctx(info)

        async def invite(session) -> t.CreateEntrustmentInvitationPayload:
            invitation, code = await service.create_entrustment_invitation(
                session=session, clock=ctx.clock, secret=ctx.settings.secret_key,
                operator_id=ctx.principal.account_id, external_user_id=input.external_user_id)
            return t.CreateEntrustmentInvitationPayload(invitation=t.EntrustmentInvitation(
                code=code, external_user_id=invitation.external_user_id, expires_at=invitation.expires_at))

        return await run_mutation(ctx, t.CreateEntrustmentInvitationPayload, invite)

    @strawberry.mutation(extensions=[Allow(R.INDIVIDUAL, password_session=True)],
                         description="Entrust an app operator (委托协议) with the code its app shows.")
    async def accept_entrustment(self, info: strawberry.Info, input: t.AcceptEntrustmentInput) -> t.AcceptEntrustmentPayload:
        ctx = _ctx(info)

        async def accept(session) -> t.AcceptEntrustmentPayload:
            row = await service.accept_entrustment(session=session, clock=ctx.clock, secret=ctx.settings.secret_key,
                                                   individual_id=ctx.principal.account_id, code=input.code,
                                                   agreement_version=input.agreement_version)
            names = await service.account_names(session=session, ids=[row.operator_account_id])
            return t.AcceptEntrustmentPayload(entrustment=t.Entrustment.from_row(row, names))

        return await run_mutation(ctx, t.AcceptEntrustmentPayload, accept)

    @strawberry.mutation(extensions=[Allow(R.INDIVIDUAL, password_session=True)],
                         description="Withdraw an entrustment; the operator can no longer act for this person.")
    async def revoke_entrustment(self, info: strawberry.Info, input: t.RevokeEntrustmentInput) -> t.RevokeEntrustmentPayload:
        ctx = _ctx(info)

        async def revoke(session) -> t.RevokeEntrustmentPayload:
            row = await service.revoke_entrustment(session=session, clock=ctx.clock,
                                                   individual_id=ctx.principal.account_id,
                                                   entrustment_id=parse_id(input.id))
            names = await service.account_names(session=session, ids=[row.operator_account_id])
            return t.RevokeEntrustmentPayload(entrustment=t.Entrustment.from_row(row, names))

        return await run_mutation(ctx, t.RevokeEntrustmentPayload, revoke)

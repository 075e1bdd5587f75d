"""Generating a request: validate, make the key pair on the token, have it sign the CSR, verify
the signature in software, store the record. No key is left without a record."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from tui_csr.core.models import AuditEntry, Request, Status, utcnow
from tui_csr.core.rules import (
    GenerateParams,
    ValidatedRequest,
    default_label,
    free_label,
    validate_label,
    validate_request,
)
from tui_csr.errors import InputError

if TYPE_CHECKING:
    from tui_csr.core.dn import DistinguishedName
    from tui_csr.services.context import ServiceContext

Progress = Callable[[str], None]


class Generation:
    """Validate and generate requests over the shared context."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    # -- checks without a key ------------------------------------------------------------------
    def validate(self, params: GenerateParams) -> ValidatedRequest:
        """Check everything that needs no token; raises InputError naming the field.

        Runs before any key exists, so a refusal leaves the token as it was.
        """
        store = self.ctx.store
        return validate_request(
            params, existing_groups=[g.name for g in store.list_groups()],
            label_taken=lambda label: store.find_request_by_label(label) is not None,
            san_supported=self.ctx.settings.san_supported, today=self.ctx.today())

    def free_label(self, base: str) -> str:
        """``base`` made unique among the store's labels."""
        store = self.ctx.store
        return free_label(base, lambda label: store.find_request_by_label(label) is not None)

    async def spec_support(self) -> dict[str, str | None]:
        """Every key spec name -> None when the token can make it, else the reason it cannot."""
        from tui_csr.core.keyspec import KEY_SPECS

        token = self.ctx.require_token()
        return {name: await token.supports(spec) for name, spec in KEY_SPECS.items()}

    async def label_problem(self, label: str) -> str | None:
        """None when ``label`` is a valid key label free in the store and on the token; else the
        one-sentence reason (for the wizard's label field)."""
        try:
            value = validate_label(label)
        except InputError as exc:
            return exc.message
        if await asyncio.to_thread(self.ctx.store.find_request_by_label, value) is not None:
            return f"A request labelled '{value}' already exists."
        token = self.ctx.token
        if token is not None and await token.label_in_use(value):
            return f"Key label '{value}' is already used on token '{token.label}'."
        return None

    async def suggest_label(self, dn: DistinguishedName) -> str:
        """The default label for ``dn`` (CN and date), made unique in the store."""
        return await asyncio.to_thread(self.free_label, default_label(dn, self.ctx.today()))

    # -- generating ----------------------------------------------------------------------------
    async def generate(self, params: GenerateParams,
                       progress: Progress | None = None) -> Request:
        """Validate, generate the key pair on the token, have it sign the CSR, verify the
        signature in software and store the request. On any failure after key generation the
        key pair is destroyed again: no key without a record."""
        say = progress or (lambda _msg: None)
        v = await asyncio.to_thread(self.validate, params)
        token = self.ctx.require_token()
        reason = await token.supports(v.spec)
        if reason:
            raise InputError(reason, field="key_spec", code="CKR_MECHANISM_INVALID")
        if await token.label_in_use(v.label):
            if params.label and params.label.strip():
                raise InputError(f"Key label '{v.label}' is already used on token "
                                 f"'{token.label}'.", field="label")
            # A default label may collide with a key made elsewhere (another data folder,
            # another tool): take the next free suffix instead of refusing.
            v = await self._free_token_label(v)
        say(f"Generating {v.spec.display} key on token {token.label}")
        pair = await token.generate_keypair(v.spec, v.label, await self.ctx.store_tag())
        try:
            return await self.record(v, pair.key_id, pair.spki_der, "generate", say)
        except BaseException:
            # Shield the clean-up: a cancelled worker must still not leave a key behind.
            await asyncio.shield(self._destroy_quietly(pair.key_id))
            raise

    async def sign_and_record(self, params: GenerateParams, key_id: bytes, label: str,
                              spki_der: bytes, action: str) -> Request:
        """Validate ``params`` for an existing key pair (its spec comes from the public key),
        have the token sign the CSR and record it."""
        from tui_csr.core.csr import spec_of_spki

        params = replace(params, key_spec=spec_of_spki(spki_der).name, label=label)
        v = await asyncio.to_thread(self.validate, params)
        return await self.record(v, key_id, spki_der, action, lambda _m: None)

    async def record(self, v: ValidatedRequest, key_id: bytes, spki_der: bytes, action: str,
                     say: Progress) -> Request:
        """Sign the CSR for ``key_id`` on the token, verify it in software, store the record."""
        # Imported here, not at the top: list, show and the TUI's start need no asn1crypto.
        from tui_csr.core.csr import assemble, build_tbs, signature_algorithm, to_pem, verify
        from tui_csr.hsm.keys import pkcs11_uri

        token = self.ctx.require_token()
        say(f"Signing the CSR on token {token.label}")
        tbs = build_tbs(v.dn, spki_der, v.sans)
        signature = await token.sign(key_id, tbs.dump(), v.spec, v.hash_alg, v.scheme)
        der = assemble(tbs, signature_algorithm(v.spec, v.hash_alg, v.scheme), signature)
        verify(der)
        info = self.ctx.token_info
        request = Request(
            id=uuid.uuid4().hex, label=v.label, subject=v.dn.to_rfc4514(),
            subject_fields=v.dn.fields, sans=[(e.kind.value, e.value) for e in v.sans],
            key_spec=v.spec.name, hash=v.hash_alg.value, scheme=v.scheme.value,
            token_label=token.label, key_id=key_id.hex(),
            pkcs11_uri=pkcs11_uri(token.label, v.label, key_id),
            csr_pem=to_pem(der), groups=list(v.groups), owner=v.owner, created=utcnow(),
            created_by=self.ctx.user, status=Status.PENDING,
            token_serial=info.serial if info else None)
        say("Saving the request")
        audit = AuditEntry(action, self.ctx.user, request.id,
                           f"{v.label} {v.spec.name} {request.subject}")
        await asyncio.to_thread(self.ctx.store.add_request, request, audit)
        return request

    async def _free_token_label(self, v: ValidatedRequest) -> ValidatedRequest:
        token = self.ctx.require_token()
        for n in range(2, 1000):
            label = f"{v.label}-{n}"
            if (await asyncio.to_thread(self.ctx.store.find_request_by_label, label) is None
                    and not await token.label_in_use(label)):
                return replace(v, label=label)
        raise InputError(f"No free key label near '{v.label}' on token '{token.label}'; give "
                         "one with --label.", field="label")

    async def _destroy_quietly(self, key_id: bytes) -> None:
        # The original failure is what the user must see, not a clean-up error.
        with contextlib.suppress(Exception):
            await self.ctx.require_token().destroy(key_id)

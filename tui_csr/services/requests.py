"""Pending and issued requests: list, view, delete, regroup, import the certificate."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tui_csr.core.models import AuditEntry, Request, Status, utcnow
from tui_csr.core.rules import check_groups, check_regroup, validate_owner
from tui_csr.errors import InputError, TokenError
from tui_csr.services.certificates import (
    CertSummary,
    ImportResult,
    missing_sans,
    parse_certificate,
    summarize_certificate,
)

if TYPE_CHECKING:
    from tui_csr.core.csr import CsrSummary
    from tui_csr.hsm.keys import TokenKey
    from tui_csr.services.context import ServiceContext


@dataclass(frozen=True)
class RequestView:
    """Everything View CSR shows: the record plus what the CSR itself says (re-verified)."""

    request: Request
    csr: CsrSummary


class Requests:
    """The request records and what can be done with them."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def list_requests(self, status: Status | None = Status.PENDING) -> list[Request]:
        """Requests in the store (pending by default), newest first."""
        return await asyncio.to_thread(self.ctx.store.list_requests, status)

    async def get_request(self, request_id: str) -> Request:
        """One request by id (or unique id prefix)."""
        return await asyncio.to_thread(self.ctx.store.get_request, request_id)

    async def delete_request(self, request_id: str) -> Request:
        """Destroy the request's key pair on the token, then remove the record.

        A token failure keeps the record (and says so); a key already gone is not an error.
        """
        request = await self.get_request(request_id)
        token = self.ctx.require_token()
        if request.token_label and token.label and request.token_label != token.label:
            raise InputError(f"Request '{request.label}' lives on token '{request.token_label}', "
                             f"not on '{token.label}'; open that token to delete it.",
                             field="token")
        # A renewal with the same key (tui-csr renew --same-key) shares the key pair: then
        # only the record goes, the pair stays for the other request.
        sharing = [r for r in await self.list_requests(None) if r.id != request.id
                   and r.key_id == request.key_id and r.status is not Status.RETIRED
                   and r.token_label == request.token_label]
        if not sharing:
            try:
                await token.destroy(bytes.fromhex(request.key_id))
            except TokenError as exc:
                raise TokenError(f"{exc.message} The request record was kept.", field="token",
                                 code=exc.code) from exc
        done = (f"kept for request '{sharing[0].label}'" if sharing else "destroyed")
        audit = AuditEntry("delete", self.ctx.user, request.id,
                           f"{request.label} key {request.key_id} {done}")
        await asyncio.to_thread(self.ctx.store.remove_request, request.id, audit)
        return request

    async def token_keys(self) -> list[TokenKey]:
        """Key pairs on the token (for orphan scans and tests)."""
        return await self.ctx.require_token().list_keys()

    async def view_request(self, request_id: str) -> RequestView:
        """The record and its decoded CSR, the signature verified again."""
        from tui_csr.core.csr import from_pem_or_der, summarize  # asn1crypto: only when used

        request = await self.get_request(request_id)
        return RequestView(request, summarize(from_pem_or_der(request.csr_pem)))

    async def import_certificate(self, request_id: str, data: bytes | str) -> ImportResult:
        """Import the CA's certificate for a pending request.

        The certificate's public key must equal the request's; it is stored on the token as a
        certificate object with the key's CKA_ID and label, then the request becomes issued.
        A store failure removes the certificate object again.
        """
        from cryptography.hazmat.primitives.serialization import Encoding

        from tui_csr.core.csr import from_pem_or_der, summarize
        from tui_csr.services.chain import bundle_pem, leaf_and_chain

        request = await self.get_request(request_id)
        if request.status is not Status.PENDING:
            raise InputError(f"Request '{request.label}' already has a certificate.",
                             field="certificate")
        csr_spki = summarize(from_pem_or_der(request.csr_pem)).spki_der
        # The leaf is the file's certificate for the request's key; the others are its chain,
        # put in issuing order and checked link by link (tui_csr.services.chain). The bundle is
        # kept leaf first, so the Certificates tab can show and save leaf, chain or both.
        cert, chain = leaf_and_chain(data, csr_spki, request.label)
        summary = summarize_certificate(cert)
        token = self.ctx.require_token()
        key_id = bytes.fromhex(request.key_id)
        cert_der = cert.public_bytes(Encoding.DER)
        from asn1crypto import x509 as ax509

        parsed = ax509.Certificate.load(cert_der)
        tbs = parsed["tbs_certificate"]
        on_token = token.profile.stores_certificates
        if on_token:
            await token.store_certificate(key_id, request.label, cert_der,
                                          tbs["subject"].dump(), tbs["issuer"].dump(),
                                          tbs["serial_number"].dump())
        request.status = Status.ISSUED
        request.certificate_pem = bundle_pem([cert, *chain])
        request.issued = utcnow()
        audit = AuditEntry("import-cert", self.ctx.user, request.id,
                           f"{request.label} serial {summary.serial} from {summary.issuer}"
                           f" (chain of {len(chain)})")
        try:
            await asyncio.to_thread(self.ctx.store.update_request, request, audit)
        except BaseException:
            if on_token:
                await asyncio.shield(token.destroy_certificates(key_id))
            raise
        warnings = [w for w in [summary.validity_problem] if w]
        if not on_token:
            warnings.append(f"Token '{token.label}' ({token.profile.title}) cannot hold "
                            "certificate objects; the certificate is kept in the store only.")
        missing = missing_sans(request.sans, cert)
        if missing:
            warnings.append("The certificate lacks SANs the CSR asked for: "
                            f"{', '.join(missing)}.")
        return ImportResult(request, summary, warnings)

    async def list_certificates(self) -> list[tuple[Request, CertSummary]]:
        """Issued requests with their certificate summaries, newest first."""
        issued = await asyncio.to_thread(self.ctx.store.list_requests, Status.ISSUED)
        return [(r, summarize_certificate(parse_certificate(r.certificate_pem or "")))
                for r in issued]

    async def set_groups(self, request_id: str, groups: Sequence[str],
                         owner: str | None = None, *, change_owner: bool = False) -> Request:
        """Change a request's groups (at least one) and optionally its owner.

        A group the request joins applies its profile to the request as it is (its key, CSR
        and extensions are made): a request that does not fit is refused with the rule, the
        group and the profile named (:func:`tui_csr.core.rules.check_regroup`), before anything
        is written.
        """
        from tui_csr.core.profiles import all_profiles

        request = await self.get_request(request_id)
        store = self.ctx.store
        stored_groups = await asyncio.to_thread(store.list_groups)
        new_groups = check_groups(groups, [g.name for g in stored_groups])
        owner_value = validate_owner(owner) if change_owner else request.owner
        known = all_profiles(await asyncio.to_thread(store.list_profiles))

        def attestation_problem() -> str | None:  # asked only when a profile requires one
            from tui_csr.attestation.support import attestation_support

            return attestation_support(self.ctx.settings, self.ctx.token_info)

        check_regroup(request, new_groups,
                      group_policies={g.name: g.policy for g in stored_groups},
                      profiles=known, attestation_problem=attestation_problem)
        request.groups = list(new_groups)
        request.owner = owner_value
        audit = AuditEntry("edit-groups", self.ctx.user, request.id,
                           f"groups={','.join(request.groups)} owner={request.owner or ''}")
        await asyncio.to_thread(self.ctx.store.update_request, request, audit)
        return request

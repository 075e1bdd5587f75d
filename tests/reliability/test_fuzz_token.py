"""Fuzzing generate on the real SoftHSM token (P-256, for speed): every input either yields a
CSR whose subject, read back with ``cryptography``, holds exactly the RDNs the input means (known
from how the input was built, not from tui-csr's parser) and whose subject and SANs are the
normalised values the core returned, or an InputError naming the field; and a refused input
leaves the token's object count as it was.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from tests.reliability.conftest import examples
from tests.reliability.strategies import (
    GROUPS,
    NEW_TYPES,
    check_encodings,
    check_refusal,
    check_subject,
    csr_subject_and_sans,
    expected,
    fields_intent,
    full_dn_fields,
    generate_cases,
)
from tui_csr.config import current_user
from tui_csr.core.models import Group
from tui_csr.errors import InputError
from tui_csr.service import CsrService, GenerateParams

#: Examples that go all the way to the token (x RELIABILITY_FUZZ_SCALE).
N_TOKEN = 60


@pytest.fixture
async def fuzz_service(service: CsrService) -> CsrService:
    """The session token's service, over a store with the fuzzer's groups."""
    for name in GROUPS:
        if name != "Web":
            service.store.add_group(Group(name, created_by=current_user()))
    return service


@pytest.mark.filterwarnings("ignore:Attribute's length must be")  # UTF-8 bytes, not characters
@examples(N_TOKEN)
@given(case=generate_cases(spec_ok=True), everything=st.integers(0, 3))
async def test_generate_on_token_is_exact_or_refused(
        fuzz_service: CsrService, case: tuple[GenerateParams, list | None], everything: int) -> None:
    params, intent = case
    if everything < 3:
        # Three times in four only the subject and the SANs are fuzzed, so most examples
        # reach the token; the rest fuzz groups, owner and label as well.
        params = replace(params, groups=["Web"], owner=None, label=None)
    service = fuzz_service
    token = service.token
    before = await token.object_count()
    try:
        v = service.validate(params)
    except InputError as exc:
        v = None
        refused = exc
    try:
        req = await service.generate(params)
    except InputError as exc:
        event(f"refused: {exc.field}")
        check_refusal(exc)
        # The same refusal as the check that runs before the token is touched...
        assert v is None and str(exc) == str(refused)
        # ...so nothing was made on the token.
        assert await token.object_count() == before
        return
    event("generated")
    assert v is not None
    if any(t in NEW_TYPES for t, _ in v.dn.attrs):
        event("with an attribute of the full DN")
    subject, sans = csr_subject_and_sans(req.csr_pem.encode())
    # The subject against what the input means (independent of tui-csr's parser)...
    check_subject(subject, intent)
    check_encodings(req.csr_pem.encode())  # string types and bounds, on the DER
    event("subject checked against the input" if intent is not None else "subject not fixed")
    # ...and, like the SANs, exactly what validate normalised it to.
    assert (subject, sans) == expected(v)
    assert req.subject_fields == v.dn.fields and req.sans == [e.as_pair() for e in v.sans]
    assert tuple(req.groups) == v.groups and req.owner == v.owner
    assert req.label.startswith(v.label)  # a default label may step around one on the token
    assert await token.key_exists(bytes.fromhex(req.key_id))
    await service.delete_request(req.id)
    assert await token.object_count() == before


#: Examples of the full DN's attribute types that go to the token (x RELIABILITY_FUZZ_SCALE).
N_FULL_DN = 40


@pytest.mark.filterwarnings("ignore:Attribute's length must be")
@examples(N_FULL_DN)
@given(fields=full_dn_fields())
async def test_full_dn_attributes_on_token_are_exact_or_refused(
        fuzz_service: CsrService, fields: dict[str, str]) -> None:
    service = fuzz_service
    token = service.token
    before = await token.object_count()
    params = GenerateParams(key_spec="P-256", fields=fields, groups=["Web"])
    try:
        req = await service.generate(params)
    except InputError as exc:
        event(f"refused: {exc.field}")
        check_refusal(exc)
        assert await token.object_count() == before
        return
    event("generated")
    subject, _sans = csr_subject_and_sans(req.csr_pem.encode())
    check_subject(subject, fields_intent(fields))  # exactly what was typed, each attribute
    check_encodings(req.csr_pem.encode())  # under its OID's string type, within its bound
    await service.delete_request(req.id)
    assert await token.object_count() == before

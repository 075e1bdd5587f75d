"""Fuzzing the input checks (no token): thousands of hostile GenerateParams, group names, owners
and labels. Every input is either accepted in a normalised form that a CSR carries unchanged
(built here with a software key and read back with ``cryptography``), or refused with an
InputError naming the field; nothing else ever escapes.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import event, given
from hypothesis import strategies as st

from tests.reliability.conftest import examples
from tests.reliability.strategies import (
    GROUPS,
    NEW_TYPES,
    check_encodings,
    check_refusal,
    csr_subject_and_sans,
    expected,
    generate_params,
    group_names,
    labels,
    owners,
    raw_text,
)
from tui_csr.config import Settings, current_user
from tui_csr.core.csr import assemble, build_tbs, signature_algorithm
from tui_csr.core.dn import parse_dn
from tui_csr.core.keyspec import KEY_SPECS, HashAlg, Scheme
from tui_csr.core.models import Group
from tui_csr.core.san import parse_san
from tui_csr.errors import InputError
from tui_csr.service import CsrService, validate_label, validate_owner
from tui_csr.store.repo import Store

_KEY = ec.generate_private_key(ec.SECP256R1())
P256 = KEY_SPECS["P-256"]
_SPKI = _KEY.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)

#: Examples per test (x RELIABILITY_FUZZ_SCALE); see SECURITY.md for the totals.
N_GENERATE = 2000
N_GROUPS = 300
N_OWNER_LABEL = 1000


def offline_service(folder: Path) -> CsrService:
    """A service over a store holding :data:`GROUPS`, with no token (validation only)."""
    store = Store.open(folder)
    if not store.list_groups():
        for name in GROUPS:
            store.add_group(Group(name, created_by=current_user()))
    settings = Settings(module="", token="t", data_dir=folder, admins=[current_user()])
    return CsrService(settings, store, user=current_user())


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory) -> CsrService:
    return offline_service(tmp_path_factory.mktemp("fuzz-store"))


@pytest.fixture
def fresh_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A new store folder per call; fsync skipped (durability is not what is tested here)."""
    monkeypatch.setattr("os.fsync", lambda fd: None)
    return lambda: offline_service(Path(tempfile.mkdtemp(dir=tmp_path)))


def software_csr(v) -> bytes:
    """What the token would sign, signed by a software key instead."""
    tbs = build_tbs(v.dn, _SPKI, v.sans)
    sig = _KEY.sign(tbs.dump(), ec.ECDSA(hashes.SHA256()))
    return assemble(tbs, signature_algorithm(P256, HashAlg.SHA256, Scheme.ECDSA), sig)


# cryptography counts UTF-8 bytes against ub-common-name; RFC 5280 (X.680) counts characters,
# as the core and OpenSSL do, so a 64-character CN of accented letters only warns here.
@pytest.mark.filterwarnings("ignore:Attribute's length must be")
@examples(N_GENERATE)
@given(params=generate_params())
def test_validate_accepts_exactly_or_names_the_field(offline: CsrService, params) -> None:
    try:
        v = offline.validate(params)
    except InputError as exc:
        event(f"refused: {exc.field}")
        check_refusal(exc)
        return
    event("accepted")
    if any(t in NEW_TYPES for t, _ in v.dn.attrs):
        event("with an attribute of the full DN")
    # The normalised subject and SANs are what a CSR carries, read back by another library.
    assert csr_subject_and_sans(software_csr(v)) == expected(v)
    check_encodings(software_csr(v))  # string types and bounds, on the DER
    # Normalisation is a fixed point: the printed DN and each SAN parse back to themselves.
    assert parse_dn(v.dn.to_rfc4514()) == v.dn
    for entry in v.sans:
        assert parse_san(entry.kind, entry.value) == entry
    if not (params.dn and params.dn.strip()):
        for name, value in params.fields.items():
            if value.strip():
                assert v.dn.fields[name] in (value.strip(), value.strip().upper())
    assert set(v.groups) <= set(GROUPS) and v.groups
    assert v.label == validate_label(v.label) and v.label.isprintable()
    assert v.owner is None or v.owner == validate_owner(v.owner)


@examples(N_GROUPS)
@given(name=group_names, policy=st.one_of(st.just(""), raw_text),
       description=st.one_of(st.just(""), raw_text))
async def test_group_names_are_stored_exactly_or_refused(fresh_store, name: str, policy: str,
                                                         description: str) -> None:
    service = fresh_store()
    before = service.store.path.read_bytes()
    try:
        group = await service.add_group(name, policy=policy, description=description)
    except InputError as exc:
        event(f"refused: {exc.field}")
        check_refusal(exc)
        assert exc.field in ("group", "policy", "description"), exc.field
        assert service.store.path.read_bytes() == before  # nothing half-written
        return
    event("accepted")
    stored = {g.name: g for g in await service.list_groups()}
    assert stored[group.name].policy == group.policy == policy.strip()
    assert stored[group.name].description == group.description == description.strip()
    assert group.name == name.strip() and group.name.isprintable()


@examples(N_OWNER_LABEL)
@given(owner=owners, label=labels)
def test_owners_and_labels(owner: str | None, label: str | None) -> None:
    for check, value, field in ((validate_owner, owner, "owner"), (validate_label, label, "label")):
        if value is None:
            continue
        try:
            result = check(value)
        except InputError as exc:
            assert exc.field == field
            check_refusal(exc)
            continue
        assert result is None or (result == value.strip() and result.isprintable()
                                  and 0 < len(result) <= 64)

"""``tui-csr attestation``: download, check or import a request's key attestation.

Three forms share one sub-command (argparse cannot give a sub-command a default sub-command, so
the words are read here)::

    tui-csr attestation ID --out FILE [--force]          download (Luna/DPoD, Fortanix)
    tui-csr attestation check FILE (--request ID | --csr CSR) [--root CERT]... [--json]
    tui-csr attestation import ID FILE [--root CERT]...  check, then attach to the request

``check`` exits 0 when the chain verifies to a pinned root, every certificate is valid and the
attested key is the CSR's key; 1 naming each failing check; 2 for bad input.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

USAGE = ("tui-csr attestation ID --out FILE [--force]\n"
         "       tui-csr attestation check FILE (--request ID | --csr CSR) [--root CERT]... "
         "[--json]\n"
         "       tui-csr attestation import ID FILE [--root CERT]...")
#: Largest file read for --csr / --root (an attestation file has its own limit).
MAX_SMALL_FILE = 256 * 1024


def add_parser(sub: Any) -> None:
    from tui_csr.cli.parser import Once, new_command

    at = new_command(sub, "attestation",
                     "download, check or import the key attestation of a request")
    at.usage = USAGE
    at.add_argument("words", nargs="+", metavar="ID | check FILE | import ID FILE",
                    help="a request id (or unique prefix, or label) to download its "
                         "attestation; 'check FILE' to check an attestation file; 'import ID "
                         "FILE' to check one and attach it to request ID")
    at.add_argument("--out", action=Once, metavar="FILE",
                    help="download: PKCS#7 (Luna; PEM when FILE ends in .pem) or JSON "
                         "(Fortanix, plus FILE.chain.pem)")
    at.add_argument("--force", action="store_true", help="download: overwrite existing files")
    at.add_argument("--request", action=Once, metavar="ID",
                    help="check: the request whose CSR key the attestation must certify")
    at.add_argument("--csr", action=Once, metavar="CSR",
                    help="check: a CSR file (PEM or DER) whose key the attestation must certify")
    at.add_argument("--root", action="append", metavar="CERT",
                    help="check/import: also trust this root certificate (PEM or DER), pinned "
                         "by its key, e.g. Fortanix's root downloaded from pki.fortanix.com")
    at.add_argument("--json", action="store_true", help="check: print the report as JSON")


async def run(args: Any, settings: Any) -> int:
    from tui_csr.errors import InputError

    words = list(args.words)
    if words[0] == "check" and len(words) == 2:
        _refuse(args, "check", ("out", "force"))
        return await _check(args, settings, Path(words[1]))
    if words[0] == "import" and len(words) == 3:
        _refuse(args, "import", ("out", "force", "request", "csr", "json"))
        return await _import(args, settings, words[1], Path(words[2]))
    if len(words) == 1:
        _refuse(args, "download", ("request", "csr", "root", "json"))
        if not args.out:
            raise InputError("attestation ID needs --out FILE (or use 'attestation check FILE' "
                             "/ 'attestation import ID FILE').", field="out")
        return await _download(args, settings, words[0])
    raise InputError(f"attestation takes ID, 'check FILE' or 'import ID FILE', not "
                     f"{len(words)} words; usage: {USAGE.splitlines()[0]}", field="words")


def _refuse(args: Any, form: str, options: tuple[str, ...]) -> None:
    from tui_csr.errors import InputError

    for option in options:
        if getattr(args, option, None):
            raise InputError(f"--{option} does not apply to 'attestation {form}'.",
                             field=option)


# -- download ------------------------------------------------------------------------------------

async def _download(args: Any, settings: Any, ident: str) -> int:
    import contextlib

    from tui_csr.attestation import AttestationUnsupportedError, planned_problem, save_attestation
    from tui_csr.cli.output import safe
    from tui_csr.cli.session import find_request, login, open_service
    from tui_csr.errors import InputError, TuiCsrError

    service = await open_service(settings, token=False)
    req = await find_request(service, ident)
    problem = planned_problem("imported" if req.attestation else settings.attestation,
                              args.out, args.force)
    if problem:
        raise InputError(problem, field="out")
    if req.attestation:  # imported with `attestation import`: no token or network needed
        pass
    elif settings.attestation == "none":
        with contextlib.suppress(TuiCsrError):  # the token's maker only sharpens the reason
            await service.open_token()
    reason = service.attestation_available_for(req)
    if reason:
        raise AttestationUnsupportedError(reason)
    if service.attestation_needs_token and not req.attestation:
        await login(service)
    result = await service.attestation(req.id)
    paths = save_attestation(result, args.out, force=args.force)
    for line in result.summary_lines() + [f"wrote {path}" for path in paths]:
        print(safe(line), file=sys.stderr)
    return 0


# -- check and import ----------------------------------------------------------------------------

def read_input(path: Path, field: str, limit: int) -> bytes:
    """The bytes of a file the user named; InputError (exit 2) naming ``field`` if unreadable."""
    from tui_csr.errors import InputError

    try:
        with path.expanduser().open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise InputError(f"{path} cannot be read: {exc.strerror or exc}.", field=field) from exc
    if len(data) > limit:
        raise InputError(f"{path} is larger than {limit // 1024} KB; it is no {field} file.",
                         field=field)
    return data


def supplied_roots(paths: list[str] | None) -> tuple[list[Any], list[Any]]:
    """(pinned roots, certificates) from ``--root`` files; InputError when one is unreadable."""
    from tui_csr.attestation.base import AttestationError
    from tui_csr.attestation.reader import AttCert, unarmor_all
    from tui_csr.attestation.roots import root_from_certificate
    from tui_csr.errors import InputError

    pins, certs = [], []
    for raw in paths or []:
        path = Path(raw)
        data = read_input(path, "root", MAX_SMALL_FILE)
        try:
            blocks = ([der for kind, der in unarmor_all(data.lstrip()) if kind == "CERTIFICATE"]
                      if data.lstrip().startswith(b"-----BEGIN") else [data])
            if not blocks:
                raise AttestationError(f"{path} holds no PEM CERTIFICATE.")
            for der in blocks:
                cert = AttCert.load(der, f"the root certificate in {path}")
                certs.append(cert)
                pins.append(root_from_certificate(cert.spki_der, cert.common_name,
                                                  cert.key_description, str(path)))
        except AttestationError as exc:
            raise InputError(str(exc), field="root") from exc
    return pins, certs


async def _csr_key(args: Any, settings: Any) -> tuple[bytes, str]:
    """(SPKI DER, what it is) of the key the attestation must certify."""
    import asyncio

    from tui_csr.attestation.base import AttestationError
    from tui_csr.attestation.reader import read_csr_spki
    from tui_csr.errors import InputError

    if bool(args.request) == bool(args.csr):
        raise InputError("attestation check needs exactly one of --request ID or --csr CSR.",
                         field="request")
    if args.csr:
        data = read_input(Path(args.csr), "csr", MAX_SMALL_FILE)
        try:
            return read_csr_spki(data, f"The CSR file {args.csr}"), f"the CSR {args.csr}"
        except AttestationError as exc:
            raise InputError(str(exc), field="csr") from exc
    from tui_csr.cli.session import find_request, open_service

    service = await open_service(settings, token=False)
    req = await find_request(service, args.request)
    spki = await asyncio.to_thread(read_csr_spki, req.csr_pem.encode(),
                                   f"The CSR of request '{req.label}'")
    return spki, f"request '{req.label}'"


def run_check(data: bytes, spki: bytes, root_paths: list[str] | None):  # -> AttestationReport
    """Every check of ``data`` against ``spki``; InputError (exit 2) when ``data`` is unreadable."""
    from tui_csr.attestation.base import AttestationError
    from tui_csr.attestation.check import check_attestation
    from tui_csr.attestation.roots import PINNED_ROOTS
    from tui_csr.errors import InputError

    pins, certs = supplied_roots(root_paths)
    try:
        return check_attestation(data, spki, roots=PINNED_ROOTS + tuple(pins), extra_certs=certs)
    except AttestationError as exc:
        raise InputError(str(exc), field="file") from exc


async def _check(args: Any, settings: Any, path: Path) -> int:
    import asyncio

    from tui_csr.cli.output import print_json, safe

    data = read_input(path, "file", _max_input())
    spki, against = await _csr_key(args, settings)
    report = await asyncio.to_thread(run_check, data, spki, args.root)
    if args.json:
        print_json(report_json(report, against))
    else:
        print(safe(f"{path} checked against {against}:"))
        for line in report.lines():
            print(safe(line))
    if not report.ok:
        from tui_csr.attestation.imported import failure_error

        raise failure_error(report)
    return 0


async def _import(args: Any, settings: Any, ident: str, path: Path) -> int:
    from tui_csr.attestation.base import AttestationError
    from tui_csr.cli.output import safe
    from tui_csr.cli.session import find_request, open_service
    from tui_csr.errors import InputError

    data = read_input(path, "file", _max_input())
    pins, certs = supplied_roots(args.root)
    service = await open_service(settings, token=False)
    req = await find_request(service, ident)
    from tui_csr.attestation.roots import PINNED_ROOTS

    try:
        report = await service.attach_attestation(req.id, data, roots=PINNED_ROOTS + tuple(pins),
                                                  extra_certs=certs)
    except AttestationError as exc:
        if str(exc).startswith("attestation check failed"):
            raise
        raise InputError(str(exc), field="file") from exc  # the file does not read
    for line in report.lines():
        print(safe(line), file=sys.stderr)
    print(safe(f"attached {path} to request '{req.label}' ({req.id}): View CSR and "
               f"'attestation {req.id} --out FILE' now offer it"), file=sys.stderr)
    return 0


def report_json(report: Any, against: str) -> dict[str, Any]:
    """The JSON form of a report (``check --json``)."""
    import hashlib

    f = report.facts
    return {
        "ok": report.ok, "format": report.format, "vendor": f.vendor, "against": against,
        "root": report.root.name if report.root else None,
        "hsm": {"model": f.model, "serial": f.serial, "firmware": f.firmware},
        "key": {"type": report.leaf.key_description, "object_id": f.object_id,
                "spki_sha256": hashlib.sha256(report.attested_spki_der).hexdigest(),
                "origin": list(f.key_origin)},
        "chain": [{"role": item.role, "subject": item.cert.subject, "issuer": item.cert.issuer,
                   "not_before": item.cert.not_before.isoformat(),
                   "not_after": item.cert.not_after.isoformat(),
                   "key": item.cert.key_description} for item in report.chain],
        "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in report.checks],
    }


def _max_input() -> int:
    from tui_csr.attestation.reader import MAX_INPUT

    return MAX_INPUT

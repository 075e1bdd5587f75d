"""``tui-csr renew ID``: a new request for the same subject, SANs, groups and owner.

A new key pair by default; ``--same-key`` signs the new CSR with the request's own key pair.
Any of the generate flags changes that part on the way: ``--dn`` or a field flag replaces the
whole subject, a SAN flag replaces every SAN (``--no-sans`` drops them), ``--group`` replaces the
groups. The new request carries ``renews: ID``; the source gets ``renewed_by`` and stays as it is
until the new certificate is imported (``tui-csr import-cert FILE --retire-old`` retires it).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_parser(sub: Any) -> None:
    from tui_csr.cli.commands.generate import SUBJECT_FLAGS
    from tui_csr.cli.parser import Once, new_command

    r = new_command(sub, "renew", "renew a request: same subject, SANs, groups and owner, a new "
                    "key pair (or --same-key)")
    r.add_argument("id", metavar="ID", help="request id (or a unique prefix, or its label)")
    r.add_argument("--same-key", action="store_true",
                   help="sign the new CSR with the request's own key pair (where policy allows)")
    r.add_argument("--key-spec", action=Once, metavar="SPEC", help="another key spec")
    r.add_argument("--hash", action=Once, metavar="ALG", help="another hash")
    r.add_argument("--pss", action=argparse.BooleanOptionalAction, default=None,
                   help="RSASSA-PSS (or --no-pss: PKCS#1 v1.5); default: as the source")
    r.add_argument("--dn", action=Once, metavar="DN", help="another subject, RFC 4514")
    for flag, _attr, name, repeatable in SUBJECT_FLAGS:
        if repeatable:
            r.add_argument(flag, action="append", default=[], metavar="TEXT", help=name)
        else:
            r.add_argument(flag, action=Once, metavar="TEXT", help=name)
    for kind, what in (("email", "rfc822Name"), ("dns", "dNSName"), ("ip", "iPAddress"),
                       ("uri", "URI")):
        r.add_argument(f"--{kind}", action="append", default=[], metavar="VALUE",
                       help=f"{what} SAN (any SAN flag replaces all of the source's SANs)")
    r.add_argument("--no-sans", action="store_true", help="no SANs in the new CSR")
    r.add_argument("--group", action="append", default=[], metavar="NAME",
                   help="other certificate groups (replace the source's)")
    r.add_argument("--owner", action=Once, metavar="USER", help="another owner")
    r.add_argument("--label", action=Once, metavar="LABEL",
                   help="label of the new request (default: CN and date)")
    r.add_argument("--profile", action=Once, metavar="NAME",
                   help="another request profile (default: the source's)")
    r.add_argument("--always-authenticate", action="store_true",
                   help="the new key needs the PIN before every use")
    r.add_argument("--out", action=Once, metavar="FILE", help="write the CSR here")
    r.add_argument("--der", action="store_true", help="DER instead of PEM (needs --out)")
    r.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    r.add_argument("--json", action="store_true", help="print the new request as JSON")


def overrides_of(args: argparse.Namespace):  # -> RenewOverrides
    """The renewal's overrides from the flags."""
    from tui_csr.cli.commands.generate import sans_of, subject_fields
    from tui_csr.errors import InputError
    from tui_csr.services.renewal import RenewOverrides

    sans = sans_of(args)
    if args.no_sans and sans:
        raise InputError("--no-sans and SAN flags contradict each other; give one.",
                         field="san")
    return RenewOverrides(
        key_spec=args.key_spec, hash=args.hash, pss=args.pss, dn=args.dn,
        fields=subject_fields(args), sans=[] if args.no_sans else (sans or None),
        groups=list(args.group), owner=args.owner, label=args.label,
        always_authenticate=args.always_authenticate, profile=args.profile)


async def run(args: argparse.Namespace, settings: Any) -> int:
    from tui_csr.cli.output import check_out, emit_request, safe
    from tui_csr.cli.session import find_request, login, open_service
    from tui_csr.errors import InputError

    if args.der and not args.out:
        raise InputError("--der writes binary: give --out FILE.", field="der")
    if args.out:
        check_out(args.out, args.force)
    overrides = overrides_of(args)
    service = await open_service(settings, token=False)
    source = await find_request(service, args.id)
    # Every input error before the token is opened: the parameters as they will be used.
    service.validate(service.renewal.params_for(source, overrides))
    await login(service)
    req = await service.renew(source.id, overrides, same_key=args.same_key)
    emit_request(req, args)
    how = "the same key pair" if args.same_key else "a new key pair"
    print(f"renewed {safe(source.label)} as {safe(req.label)} ({req.id[:8]}) with {how}",
          file=sys.stderr)
    return 0

"""``tui-csr generate``: a key pair on the token and a CSR signed by it (or many: ``--batch``)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

#: DN field flags: (flag, DN attribute, help, repeatable).
SUBJECT_FLAGS = (("--cn", "CN", "Common Name", False), ("--o", "O", "Organization", False),
                 ("--ou", "OU", "Department (OU); repeat for several, in order", True),
                 ("--l", "L", "City (L)", False), ("--st", "ST", "State (ST)", False),
                 ("--c", "C", "Country (ISO 3166 code)", False),
                 ("--dc", "DC", "domain component; repeat for several, in ASN.1 order", True),
                 ("--uid", "UID", "user id (UID)", False),
                 ("--serial-number", "serialNumber", "subject serialNumber (PrintableString)",
                  False),
                 ("--email-address", "emailAddress", "emailAddress in the DN (the SAN is "
                                                     "--email)", False),
                 ("--title", "title", "title", False),
                 ("--given-name", "givenName", "givenName", False),
                 ("--surname", "SN", "surname (SN)", False),
                 ("--pseudonym", "pseudonym", "pseudonym", False),
                 ("--street", "street", "street address", False),
                 ("--postal-code", "postalCode", "postalCode", False),
                 ("--organization-identifier", "organizationIdentifier",
                  "organizationIdentifier (eIDAS, e.g. VATDE-123456789)", False),
                 ("--business-category", "businessCategory", "businessCategory (EV)", False),
                 ("--jurisdiction-c", "jurisdictionC", "jurisdictionC (EV, ISO 3166 code)",
                  False),
                 ("--jurisdiction-st", "jurisdictionST", "jurisdictionST (EV)", False),
                 ("--jurisdiction-l", "jurisdictionL", "jurisdictionL (EV)", False))


def add_parser(sub: Any) -> None:
    from tui_csr.cli.parser import Once, new_command

    g = new_command(sub, "generate", "generate a key pair on the token and a CSR signed by it")
    g.add_argument("--key-spec", action=Once, metavar="SPEC",
                   help="RSA2048 RSA3072 RSA4096 P-256 P-384 P-521 (aliases allowed)")
    g.add_argument("--hash", action=Once, metavar="ALG", help="SHA256 (default), SHA384, SHA512")
    g.add_argument("--pss", action="store_true", help="RSASSA-PSS instead of PKCS#1 v1.5")
    g.add_argument("--dn", action=Once, metavar="DN",
                   help="whole subject, RFC 4514 (CN=...,O=...,C=..)")
    for flag, _attr, name, repeatable in SUBJECT_FLAGS:
        if repeatable:
            g.add_argument(flag, action="append", default=[], metavar="TEXT", help=name)
        else:
            g.add_argument(flag, action=Once, metavar="TEXT", help=name)
    g.add_argument("--email", action="append", default=[], metavar="ADDR", help="rfc822Name SAN")
    g.add_argument("--dns", action="append", default=[], metavar="NAME", help="dNSName SAN")
    g.add_argument("--ip", action="append", default=[], metavar="ADDR", help="iPAddress SAN")
    g.add_argument("--uri", action="append", default=[], metavar="URI", help="URI SAN")
    g.add_argument("--group", action="append", default=[], metavar="NAME",
                   help="certificate group (repeat for several; at least one)")
    g.add_argument("--owner", action=Once, metavar="USER", help="owner of the request")
    g.add_argument("--label", action=Once, metavar="LABEL", help="key label (default: CN and date)")
    g.add_argument("--out", action=Once, metavar="FILE",
                   help="write the CSR here instead of stdout")
    g.add_argument("--der", action="store_true", help="DER instead of PEM (needs --out)")
    g.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    g.add_argument("--json", action="store_true", help="print the request as JSON")
    g.add_argument("--always-authenticate", action="store_true",
                   help="the key needs a login (the PIN) before every use, as code-signing keys "
                        "often should")
    g.add_argument("--key", action=Once, metavar="KEY",
                   help="a CSR for a key pair already on the token: a PKCS#11 URI "
                        "('pkcs11:token=demo;id=%%01%%02'), a CKA_ID in hex or label:NAME; the "
                        "key spec is read from the key")
    g.add_argument("--profile", action=Once, metavar="NAME",
                   help="request profile (tui-csr profiles list); the groups' profiles apply too")
    g.add_argument("--key-usage", action=Once, metavar="LIST",
                   help="keyUsage, comma-separated: digitalSignature, nonRepudiation, "
                        "keyEncipherment, dataEncipherment, keyAgreement, keyCertSign, cRLSign "
                        "(none: no keyUsage)")
    g.add_argument("--eku", action=Once, metavar="LIST",
                   help="extendedKeyUsage, comma-separated: serverAuth, clientAuth, codeSigning, "
                        "emailProtection, timeStamping, OCSPSigning or dotted OIDs")
    g.add_argument("--ca", action="store_true",
                   help="request a CA certificate (basicConstraints CA:TRUE, critical)")
    g.add_argument("--path-len", action=Once, metavar="N",
                   help="pathLenConstraint of a CA request (with --ca)")
    g.add_argument("--batch", action=Once, metavar="FILE",
                   help="many requests from a JSON Lines or CSV file (- for stdin), one per "
                        "line, same fields as the flags; all lines are validated first")


def subject_fields(args: argparse.Namespace) -> list[tuple[str, str]]:
    """The DN fields given as flags, in the order the attributes are listed (OU repeated)."""
    out: list[tuple[str, str]] = []
    for flag, attr, _name, repeatable in SUBJECT_FLAGS:
        value = getattr(args, flag[2:].replace("-", "_"))
        if repeatable:
            out.extend((attr, v) for v in value)
        elif value is not None:
            out.append((attr, value))
    return out


def sans_of(args: argparse.Namespace) -> list[tuple[str, str]]:
    """The SAN flags as (type, value) pairs."""
    return ([("email", v) for v in args.email] + [("dns", v) for v in args.dns]
            + [("ip", v) for v in args.ip] + [("uri", v) for v in args.uri])


async def run(args: argparse.Namespace, settings: Any) -> int:
    from tui_csr._lazy import import_in_background
    from tui_csr.cli.output import check_out, emit_request
    from tui_csr.cli.session import login, open_service
    from tui_csr.errors import InputError
    from tui_csr.service import GenerateParams

    if args.batch:
        from tui_csr.cli.commands.generate_batch import run_batch_command

        return await run_batch_command(args, settings)
    if not args.key_spec and not args.profile and not args.group and args.key is None:
        # With a profile (explicit or a group's) the key spec may come from its default.
        raise InputError("--key-spec is required (e.g. RSA3072 or P-256).", field="key_spec")
    if args.der and not args.out:
        raise InputError("--der writes binary: give --out FILE.", field="der")
    if args.out:
        check_out(args.out, args.force)
    params = GenerateParams(key_spec=args.key_spec or "", hash=args.hash, pss=args.pss, dn=args.dn,
                            fields=subject_fields(args), sans=sans_of(args), groups=args.group,
                            owner=args.owner, label=args.label, profile=args.profile,
                            key_usage=args.key_usage, eku=args.eku, ca=args.ca,
                            path_len=args.path_len)
    if args.always_authenticate:
        params.always_authenticate = True
    if args.key is not None:  # a CSR for a key pair already on the token
        from tui_csr.cli.commands.generate_key import run_for_existing_key

        return await run_for_existing_key(args, settings, params)
    service = await open_service(settings, token=False)
    service.validate(params)  # all input errors before the token is even opened
    import_in_background("cryptography.x509")  # loads while the token works; the check needs it
    await login(service)
    progress = _progress_printer() if sys.stderr.isatty() and not args.json else None
    req = await service.generate(params, progress=progress)
    emit_request(req, args)
    return 0


def _progress_printer():  # -> Callable[[str], None]
    def say(message: str) -> None:
        print(f"{message}…", file=sys.stderr)
    return say

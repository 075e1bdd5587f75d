"""The headless command line: a contract that scripts and the screens rely on.

Exit status: 0 on success; 2 for invalid input (``error:`` on stderr naming the field); 1 for any
other failure (``error:`` too, one sentence, no traceback). Imports are lazy so ``--version`` and
``list`` start fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from tui_csr import __version__
from tui_csr._lazy import import_in_background as _preimport
from tui_csr._lazy import lazy_import

if TYPE_CHECKING:
    import asyncio
    import json
else:  # imported on first use: --version and --help never need them (asyncio ~30 ms)
    asyncio = lazy_import("asyncio")
    json = lazy_import("json")


class _Parser(argparse.ArgumentParser):
    """argparse with the house error format: ``error: ...`` and exit status 2."""

    def error(self, message: str) -> NoReturn:
        from tui_csr.errors import printable

        self.exit(2, f"error: {printable(message)}\n")


class _RefusePin(argparse.Action):
    """``--pin``: refused, and the value is not repeated in the message."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        parser.error("a PIN is never a command-line argument (every user of this host can read "
                     "process arguments); use TUI_CSR_PIN, --pin-file FILE or the prompt")


def _common(p: argparse.ArgumentParser, top: bool) -> None:
    # On sub-commands the defaults are SUPPRESS so they do not overwrite values given before the
    # sub-command: `tui-csr --token x list` and `tui-csr list --token x` both work.
    d = None if top else argparse.SUPPRESS
    g = p.add_argument_group("configuration")
    g.add_argument("--module", default=d, metavar="PATH",
                   help="PKCS#11 library (or TUI_CSR_MODULE)")
    g.add_argument("--token", default=d, metavar="LABEL", help="token label (or TUI_CSR_TOKEN)")
    g.add_argument("--data-dir", default=d, metavar="DIR",
                   help="data folder (or TUI_CSR_DATA_DIR; default XDG data dir)")
    g.add_argument("--config", default=d, metavar="FILE",
                   help="TOML config (or TUI_CSR_CONFIG; default XDG config dir)")
    g.add_argument("--pin-file", default=d, metavar="FILE",
                   help="read the user PIN from FILE (or TUI_CSR_PIN; else a prompt)")
    # Never an option, but named, so that `--pin 1234` is refused without echoing the PIN
    # (argparse would otherwise take it as an abbreviation of --pin-file and quote it back).
    g.add_argument("--pin", nargs="?", action=_RefusePin, default=argparse.SUPPRESS,
                   help=argparse.SUPPRESS)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used to document the CLI)."""
    parser = _Parser(prog="tui-csr", description="CSRs whose key pair is made and kept in an "
                     "HSM (PKCS#11). Without a command: the terminal UI.")
    parser.add_argument("--version", action="version", version=f"tui-csr {__version__}")
    _common(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def cmd(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        _common(p, top=False)
        return p

    cmd("ui", "open the terminal UI (the default)")
    cmd("demo", "set up (or reuse) the SoftHSM demo token, then open the UI")

    g = cmd("generate", "generate a key pair on the token and a CSR signed by it")
    g.add_argument("--key-spec", required=False, metavar="SPEC",
                   help="RSA2048 RSA3072 RSA4096 P-256 P-384 P-521 (aliases allowed)")
    g.add_argument("--hash", metavar="ALG", help="SHA256 (default), SHA384, SHA512")
    g.add_argument("--pss", action="store_true", help="RSASSA-PSS instead of PKCS#1 v1.5")
    g.add_argument("--dn", metavar="DN", help="whole subject, RFC 4514 (CN=...,O=...,C=..)")
    for flag, name in (("--cn", "Common Name"), ("--o", "Organization"),
                       ("--ou", "Department (OU)"), ("--l", "City (L)"),
                       ("--st", "State (ST)"), ("--c", "Country (ISO 3166 code)")):
        g.add_argument(flag, metavar="TEXT", help=name)
    g.add_argument("--email", action="append", default=[], metavar="ADDR", help="rfc822Name SAN")
    g.add_argument("--dns", action="append", default=[], metavar="NAME", help="dNSName SAN")
    g.add_argument("--ip", action="append", default=[], metavar="ADDR", help="iPAddress SAN")
    g.add_argument("--uri", action="append", default=[], metavar="URI", help="URI SAN")
    g.add_argument("--group", action="append", default=[], metavar="NAME",
                   help="certificate group (repeat for several; at least one)")
    g.add_argument("--owner", metavar="USER", help="owner of the request")
    g.add_argument("--label", metavar="LABEL", help="key label (default: CN and date)")
    g.add_argument("--out", metavar="FILE", help="write the CSR here instead of stdout")
    g.add_argument("--der", action="store_true", help="DER instead of PEM (needs --out)")
    g.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    g.add_argument("--json", action="store_true", help="print the request as JSON")
    g.add_argument("--batch", metavar="FILE",
                   help="many requests from a JSON Lines or CSV file (- for stdin), one per "
                        "line, same fields as the flags; all lines are validated first")

    ls = cmd("list", "list pending requests")
    ls.add_argument("--json", action="store_true")
    ls.add_argument("--all", action="store_true", help="issued requests too")

    sh = cmd("show", "show one request")
    sh.add_argument("id", metavar="ID", help="request id (or a unique prefix, or its label)")
    fmt = sh.add_mutually_exclusive_group()
    fmt.add_argument("--pem", action="store_true", help="the CSR as PEM (default)")
    fmt.add_argument("--der", action="store_true", help="the CSR as DER (needs --out)")
    fmt.add_argument("--text", action="store_true", help="decoded, like openssl req -text")
    fmt.add_argument("--json", action="store_true")
    sh.add_argument("--out", metavar="FILE")
    sh.add_argument("--force", action="store_true", help="overwrite --out if it exists")

    de = cmd("delete", "destroy the request's key pair on the token, then the request")
    de.add_argument("id", metavar="ID")
    de.add_argument("--yes", action="store_true", help="confirm: the private key is destroyed")

    at = cmd("attestation", "download the key attestation of a request (Luna/DPoD, Fortanix)")
    at.add_argument("id", metavar="ID", help="request id (or a unique prefix, or its label)")
    at.add_argument("--out", required=True, metavar="FILE",
                    help="PKCS#7 (Luna; PEM when FILE ends in .pem) or JSON (Fortanix, plus "
                         "FILE.chain.pem)")
    at.add_argument("--force", action="store_true", help="overwrite existing files")

    ed = cmd("edit", "change a request's groups and owner")
    ed.add_argument("id", metavar="ID")
    ed.add_argument("--group", action="append", default=[], metavar="NAME",
                    help="the request's groups (replaces them; at least one)")
    ed.add_argument("--owner", metavar="USER", help="new owner ('' to clear)")

    ic = cmd("import-cert", "import the CA's certificate for a request (PEM or DER)")
    ic.add_argument("id", metavar="ID")
    ic.add_argument("file", metavar="FILE", help="certificate file, or - for standard input")
    ic.add_argument("--json", action="store_true")

    ce = cmd("certs", "issued certificates")
    csub = ce.add_subparsers(dest="certs_command", metavar="ACTION", parser_class=_Parser)
    cl = csub.add_parser("list", help="list issued certificates")
    cl.add_argument("--json", action="store_true")

    orp = cmd("orphans", "keys without a record, records without a key")
    osub = orp.add_subparsers(dest="orphans_command", metavar="ACTION", parser_class=_Parser)
    ol = osub.add_parser("list", help="report orphans (the default)")
    ol.add_argument("--json", action="store_true")
    od = osub.add_parser("destroy", help="destroy an orphan key pair on the token")
    od.add_argument("key_id", metavar="KEY_ID", help="CKA_ID in hex")
    od.add_argument("--yes", action="store_true", help="confirm: the key is destroyed")
    oa = osub.add_parser("adopt", help="make a new CSR for an orphan key and record it")
    oa.add_argument("key_id", metavar="KEY_ID", help="CKA_ID in hex")
    oa.add_argument("--dn", metavar="DN")
    oa.add_argument("--cn", metavar="TEXT")
    oa.add_argument("--hash", metavar="ALG")
    oa.add_argument("--pss", action="store_true")
    oa.add_argument("--group", action="append", default=[], metavar="NAME")
    oa.add_argument("--owner", metavar="USER")
    oa.add_argument("--json", action="store_true")

    gr = cmd("groups", "certificate groups")
    gsub = gr.add_subparsers(dest="groups_command", metavar="ACTION", parser_class=_Parser)
    gl = gsub.add_parser("list", help="list groups")
    gl.add_argument("--json", action="store_true")
    ga = gsub.add_parser("add", help="create a group (administrators)")
    ga.add_argument("name")
    ga.add_argument("--policy", default="")
    ga.add_argument("--description", default="")
    gn = gsub.add_parser("rename", help="rename a group (administrators)")
    gn.add_argument("old")
    gn.add_argument("new")
    gm = gsub.add_parser("remove", help="remove an empty group (administrators)")
    gm.add_argument("name")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``tui-csr``; returns the exit status."""
    if list(sys.argv[1:] if argv is None else argv) == ["--version"]:
        # The one answer that needs no parser: building it (every sub-command) costs ~10 ms.
        print(f"tui-csr {__version__}")
        return 0
    from tui_csr.errors import TuiCsrError

    args = _literal_double_dash(build_parser().parse_args(argv))
    try:
        return _dispatch(args)
    except TuiCsrError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except Exception as exc:  # noqa: BLE001 - the contract: one sentence, never a traceback
        from tui_csr.errors import printable

        print(f"error: unexpected {type(exc).__name__}: {printable(str(exc))}", file=sys.stderr)
        if os.environ.get("TUI_CSR_DEBUG"):
            raise
        return 1


#: Options that may be repeated (argparse ``append``): their value is a list of strings.
_REPEATABLE = frozenset({"email", "dns", "ip", "uri", "group"})


def _literal_double_dash(args: argparse.Namespace) -> argparse.Namespace:
    """Python 3.11's argparse turns the value of ``--cn=--`` into ``[]`` (it strips a ``--``
    even from an attached value): give the user's literal ``--`` back, so it is checked like
    any other value instead of crashing later on a list."""
    for dest, value in vars(args).items():
        if not isinstance(value, list):
            continue
        if dest in _REPEATABLE:
            setattr(args, dest, ["--" if item == [] else item for item in value])
        elif value == []:
            setattr(args, dest, "--")
    return args


def _settings(args: argparse.Namespace):  # -> Settings
    from tui_csr.config import load_settings

    return load_settings(config=getattr(args, "config", None),
                         module=getattr(args, "module", None),
                         token=getattr(args, "token", None),
                         data_dir=getattr(args, "data_dir", None),
                         pin_file=getattr(args, "pin_file", None))


def _dispatch(args: argparse.Namespace) -> int:
    command = args.command or "ui"
    if command == "demo":
        return _demo()
    settings = _settings(args)
    if command == "ui":
        return _run_ui(settings, pin=None)
    if command == "groups":
        return asyncio.run(_groups(args, settings))
    return asyncio.run(_COMMANDS[command](args, settings))


# -- helpers ---------------------------------------------------------------------------------

def request_json(req: Any) -> dict[str, Any]:
    """The JSON object of a request (the CLI contract; ``list --json`` gives an array of them)."""
    from tui_csr.core.keyspec import KEY_SPECS, HashAlg, Scheme, signature_name

    doc = req.to_doc()
    try:
        doc["signature"] = signature_name(KEY_SPECS[req.key_spec], HashAlg(req.hash),
                                          Scheme(req.scheme))
    except (KeyError, ValueError):  # a record edited by hand: show it, with what is known
        doc["signature"] = None
    doc["sans"] = [{"type": k, "value": v} for k, v in req.sans]
    doc["token"] = req.token_label
    return doc


def _check_out(path: str, force: bool) -> Path:
    """Refuse to overwrite without --force, and a missing folder, before any work is done."""
    from tui_csr.errors import InputError

    target = Path(path).expanduser()
    if target.exists() and not force:
        raise InputError(f"{target} already exists; use --force to overwrite it.", field="out")
    if not target.parent.is_dir():
        raise InputError(f"Folder {target.parent} does not exist.", field="out")
    return target


def _write_out(path: str, data: bytes, force: bool) -> Path:
    import contextlib
    import tempfile

    from tui_csr.errors import InputError

    target = _check_out(path, force)
    # A random temp name made with O_EXCL: in a shared folder (/tmp) a predictable one would let
    # another user plant a symlink there and have us write through it into one of our files.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        umask = os.umask(0o022)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # as an ordinary new file: a CSR is not secret
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        if force:
            os.replace(tmp, target)
        else:
            try:
                # link() never replaces: a file that appeared since the check is kept.
                os.link(tmp, target)
            except FileExistsError:
                raise InputError(f"{target} already exists; use --force to overwrite it.",
                                 field="out") from None
            except OSError:  # no hard links on this file system
                if target.exists() or target.is_symlink():
                    raise InputError(f"{target} already exists; use --force to overwrite it.",
                                     field="out") from None
                os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return target.resolve()


async def _service(settings: Any, *, token: bool):  # -> CsrService
    from tui_csr.service import CsrService

    service = CsrService.create(settings)
    if token:
        await _login(service)
    return service


async def _login(service: Any) -> None:
    from tui_csr.pin import pin_from_environment, prompt_pin

    info = await service.open_token()
    if not info.login_required:
        await service.login(None)
        return
    pin = pin_from_environment(service.settings.pin_file)
    if pin is None:
        pin = await asyncio.to_thread(prompt_pin, info.label)
    await service.login(pin)


# -- commands --------------------------------------------------------------------------------

async def _generate(args: argparse.Namespace, settings: Any) -> int:
    from tui_csr.errors import InputError
    from tui_csr.service import GenerateParams

    if args.batch:
        from tui_csr.batch import generate_command

        return await generate_command(args, settings)
    if not args.key_spec:
        raise InputError("--key-spec is required (e.g. RSA3072 or P-256).", field="key_spec")
    if args.der and not args.out:
        raise InputError("--der writes binary: give --out FILE.", field="der")
    if args.out:
        _check_out(args.out, args.force)
    fields = {k: v for k, v in (("CN", args.cn), ("O", args.o), ("OU", args.ou), ("L", args.l),
                                ("ST", args.st), ("C", args.c)) if v is not None}
    sans = ([("email", v) for v in args.email] + [("dns", v) for v in args.dns]
            + [("ip", v) for v in args.ip] + [("uri", v) for v in args.uri])
    params = GenerateParams(key_spec=args.key_spec, hash=args.hash, pss=args.pss, dn=args.dn,
                            fields=fields, sans=sans, groups=args.group, owner=args.owner,
                            label=args.label)
    service = await _service(settings, token=False)
    service.validate(params)  # all input errors before the token is even opened
    _preimport("cryptography.x509")  # loads while the token works; the CSR check needs it
    await _login(service)
    progress = _progress_printer() if sys.stderr.isatty() and not args.json else None
    req = await service.generate(params, progress=progress)
    if args.out:
        from tui_csr.core.csr import from_pem_or_der

        data = from_pem_or_der(req.csr_pem) if args.der else req.csr_pem.encode()
        path = _write_out(args.out, data, args.force)
        if not args.json:
            print(f"wrote {path}", file=sys.stderr)
    if args.json:
        print(json.dumps(request_json(req), ensure_ascii=False))
    elif not args.out:
        sys.stdout.write(req.csr_pem)
    return 0


def _progress_printer():
    def say(message: str) -> None:
        print(f"{message}…", file=sys.stderr)
    return say


async def _list(args: argparse.Namespace, settings: Any) -> int:
    from tui_csr.core.keyspec import KEY_SPECS
    from tui_csr.core.models import Status

    service = await _service(settings, token=False)
    reqs = await service.list_requests(None if args.all else Status.PENDING)
    if args.json:
        print(json.dumps([request_json(r) for r in reqs], ensure_ascii=False))
        return 0
    if not reqs:
        groups = await service.list_groups()
        hint = ("no certificate group exists yet: an administrator must create one "
                "(tui-csr groups add NAME)" if not groups else
                "make one with: tui-csr generate --key-spec P-256 --cn NAME --group "
                f"{groups[0].name}")
        print(f"No pending requests; {hint}.")
        return 0
    rows = [("ID", "LABEL", "SUBJECT CN", "KEY", "GROUPS", "OWNER", "CREATED")]
    for r in reqs:
        rows.append((r.id[:8], r.label, r.subject_fields.get("CN", ""),
                     KEY_SPECS[r.key_spec].display if r.key_spec in KEY_SPECS else r.key_spec,
                     ",".join(r.groups), r.owner or "",
                     r.created.astimezone().strftime("%Y-%m-%d %H:%M")))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


async def _show(args: argparse.Namespace, settings: Any) -> int:
    from tui_csr.core.csr import describe, from_pem_or_der
    from tui_csr.errors import InputError

    service = await _service(settings, token=False)
    req = await _find(service, args.id)
    der = from_pem_or_der(req.csr_pem)
    if args.der:
        if not args.out:
            raise InputError("--der writes binary: give --out FILE.", field="der")
        print(f"wrote {_write_out(args.out, der, args.force)}", file=sys.stderr)
        return 0
    if args.json:
        text = json.dumps(request_json(req), ensure_ascii=False) + "\n"
    elif args.text:
        text = describe(der) + _record_text(req)
    else:
        text = req.csr_pem
    if args.out:
        print(f"wrote {_write_out(args.out, text.encode(), args.force)}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _record_text(req: Any) -> str:
    return (f"    Label: {req.label}\n    Token: {req.token_label}\n"
            f"    PKCS#11 URI: {req.pkcs11_uri}\n    Groups: {', '.join(req.groups)}\n"
            f"    Owner: {req.owner or '-'}\n"
            f"    Created: {req.created.astimezone().isoformat()} by {req.created_by}\n"
            f"    Status: {req.status.value}\n    Id: {req.id}\n")


async def _find(service: Any, ident: str):  # -> Request
    from tui_csr.errors import NotFoundError

    try:
        return await service.get_request(ident)
    except NotFoundError:
        by_label = await asyncio.to_thread(service.store.find_request_by_label, ident)
        if by_label is None:
            raise
        return by_label


async def _delete(args: argparse.Namespace, settings: Any) -> int:
    from tui_csr.errors import InputError

    service = await _service(settings, token=False)
    req = await _find(service, args.id)
    if not args.yes:
        raise InputError(f"Deleting '{req.label}' destroys its private key on the token for "
                         "good; add --yes to confirm.", field="yes")
    await _login(service)
    await service.delete_request(req.id)
    print(f"deleted {req.label} ({req.id[:8]}): key pair destroyed on token "
          f"'{req.token_label}'", file=sys.stderr)
    return 0


async def _attestation(args: argparse.Namespace, settings: Any) -> int:
    import contextlib

    from tui_csr.attestation import AttestationUnsupportedError, planned_problem, save_attestation
    from tui_csr.errors import InputError, TuiCsrError

    service = await _service(settings, token=False)
    req = await _find(service, args.id)
    problem = planned_problem(settings.attestation, args.out, args.force)
    if problem:
        raise InputError(problem, field="out")
    if settings.attestation == "none":
        with contextlib.suppress(TuiCsrError):  # the token's maker only sharpens the reason
            await service.open_token()
    reason = service.attestation_available()
    if reason:
        raise AttestationUnsupportedError(reason)
    if service.attestation_needs_token:
        await _login(service)
    result = await service.attestation(req.id)
    paths = save_attestation(result, args.out, force=args.force)
    for line in result.summary_lines() + [f"wrote {path}" for path in paths]:
        print(line, file=sys.stderr)
    return 0


async def _groups(args: argparse.Namespace, settings: Any) -> int:
    from tui_csr.errors import InputError

    service = await _service(settings, token=False)
    action = args.groups_command or "list"
    if action == "list":
        groups = await service.list_groups()
        usage = await asyncio.to_thread(service.store.group_usage)
        if getattr(args, "json", False):
            out = []
            for g in groups:
                doc = g.to_doc()
                doc["pending"], doc["issued"] = usage.get(g.name, (0, 0))
                out.append(doc)
            print(json.dumps(out, ensure_ascii=False))
        elif not groups:
            print("No certificate groups; an administrator creates one with: "
                  "tui-csr groups add NAME --policy POLICY")
        else:
            for g in groups:
                pending, issued = usage.get(g.name, (0, 0))
                print(f"{g.name}\tpolicy={g.policy or '-'}\tpending={pending}\tissued={issued}"
                      f"\t{g.description}")
        return 0
    if action == "add":
        g = await service.add_group(args.name, policy=args.policy, description=args.description)
        print(f"created group {g.name}", file=sys.stderr)
    elif action == "rename":
        await service.rename_group(args.old, args.new)
        print(f"renamed group {args.old} to {args.new}", file=sys.stderr)
    elif action == "remove":
        await service.remove_group(args.name)
        print(f"removed group {args.name}", file=sys.stderr)
    else:  # pragma: no cover - argparse limits the choices
        raise InputError(f"Unknown groups action '{action}'.", field="groups")
    return 0


async def _edit(args: argparse.Namespace, settings: Any) -> int:
    service = await _service(settings, token=False)
    req = await _find(service, args.id)
    groups = args.group or req.groups
    req = await service.set_groups(req.id, groups, args.owner,
                                   change_owner=args.owner is not None)
    print(f"{req.label}: groups {', '.join(req.groups)}; owner {req.owner or '-'}",
          file=sys.stderr)
    return 0


async def _import_cert(args: argparse.Namespace, settings: Any) -> int:
    from tui_csr.errors import InputError

    service = await _service(settings, token=False)
    req = await _find(service, args.id)
    try:
        data = sys.stdin.buffer.read() if args.file == "-" else _read_file(args.file)
    except OSError as exc:
        raise InputError(f"Certificate file {args.file} cannot be read: {exc.strerror}.",
                         field="file") from exc
    await _login(service)
    result = await service.import_certificate(req.id, data)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    c = result.certificate
    if args.json:
        print(json.dumps(request_json(result.request), ensure_ascii=False))
    print(f"imported certificate serial {c.serial} from {c.issuer} for {req.label}; "
          f"valid {c.not_before:%Y-%m-%d} to {c.not_after:%Y-%m-%d}", file=sys.stderr)
    return 0


def _read_file(path: str) -> bytes:
    return Path(path).expanduser().read_bytes()


async def _certs(args: argparse.Namespace, settings: Any) -> int:
    service = await _service(settings, token=False)
    certs = await service.list_certificates()
    if getattr(args, "json", False):
        out = []
        for req, c in certs:
            doc = request_json(req)
            doc["certificate"] = {"subject": c.subject, "issuer": c.issuer, "serial": c.serial,
                                  "not_before": c.not_before.isoformat(),
                                  "not_after": c.not_after.isoformat()}
            out.append(doc)
        print(json.dumps(out, ensure_ascii=False))
        return 0
    if not certs:
        print("No issued certificates; import one with: tui-csr import-cert ID FILE")
    for req, c in certs:
        print(f"{req.id[:8]}  {req.label}  {c.subject}  issuer={c.issuer}  serial={c.serial}  "
              f"{c.not_before:%Y-%m-%d}..{c.not_after:%Y-%m-%d}  {','.join(req.groups)}  "
              f"{req.owner or '-'}")
    return 0


async def _orphans(args: argparse.Namespace, settings: Any) -> int:
    from tui_csr.errors import InputError
    from tui_csr.service import GenerateParams

    service = await _service(settings, token=True)
    action = args.orphans_command or "list"
    if action == "destroy":
        if not args.yes:
            raise InputError("Destroying an orphan key is final; add --yes to confirm.",
                             field="yes")
        n = await service.destroy_orphan(args.key_id)
        print(f"destroyed {n} objects of key {args.key_id}", file=sys.stderr)
        return 0
    if action == "adopt":
        fields = {"CN": args.cn} if args.cn else {}
        req = await service.adopt_orphan(args.key_id, GenerateParams(
            key_spec="", hash=args.hash, pss=args.pss, dn=args.dn, fields=fields,
            groups=args.group, owner=args.owner))
        if args.json:
            print(json.dumps(request_json(req), ensure_ascii=False))
        else:
            sys.stdout.write(req.csr_pem)
        return 0
    report = await service.scan_orphans()
    if getattr(args, "json", False):
        print(json.dumps({
            "keys_without_record": [{"key_id": k.key_id.hex(), "label": k.label}
                                    for k in report.keys_without_record],
            "records_without_key": [{"id": r.id, "label": r.label, "key_id": r.key_id}
                                    for r in report.records_without_key]}))
        return 0
    if report.empty:
        print("Token and store agree: no orphans.")
    for k in report.keys_without_record:
        print(f"key without a record: {k.key_id.hex()}  label={k.label}  "
              f"(tui-csr orphans adopt {k.key_id.hex()} --cn ... --group ... | "
              f"destroy {k.key_id.hex()} --yes)")
    for r in report.records_without_key:
        print(f"record without a key: {r.id[:8]}  label={r.label}  key={r.key_id}")
    return 0


_COMMANDS = {"generate": _generate, "list": _list, "show": _show, "delete": _delete,
             "edit": _edit, "import-cert": _import_cert, "certs": _certs,
             "orphans": _orphans, "attestation": _attestation}


# -- UI and demo -------------------------------------------------------------------------------

def _run_ui(settings: Any, pin: str | None) -> int:
    try:
        from tui_csr.ui.app import run_app
    except ImportError:  # the screens are not built in this checkout: fall back to the list
        return asyncio.run(_list(argparse.Namespace(json=False, all=False), settings))
    return run_app(settings, pin=pin)


def _demo() -> int:
    from tui_csr.demo import DEMO_LABEL, DEMO_PIN, DEMO_SO_PIN, setup_demo

    settings, created = setup_demo()
    state = "created" if created else "reused"
    print(f"Demo token '{DEMO_LABEL}' {state} (SoftHSM2; user PIN {DEMO_PIN}, SO PIN "
          f"{DEMO_SO_PIN}: public on purpose, it is a demo).\n"
          f"Data folder: {settings.data_dir}", file=sys.stderr)
    return _run_ui(settings, pin=DEMO_PIN)

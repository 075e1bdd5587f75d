"""``tui-csr generate --key KEY``: a CSR for a key pair already on the token.

For keys made by another tool (``pkcs11-tool --keypairgen``, ``p11tool``) or by a key ceremony.
KEY is a PKCS#11 URI (RFC 7512), a CKA_ID in hex (``id:0a0b`` or ``0a0b``) or a label
(``label:NAME``). The key spec is read from the key; its flags must be those tui-csr gives its own
keys (sensitive, never extractable, always sensitive, sign); a key that fails them, or that a
request already owns, is refused (exit 2) naming the attribute or the request. The token named
in a URI is the token opened, unless ``--token`` says otherwise (then they must agree).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tui_csr.core.rules import GenerateParams


async def run_for_existing_key(args: argparse.Namespace, settings: Any,
                               params: GenerateParams) -> int:
    """``generate --key``: ``params`` are generate's flags (the key spec left empty unless
    given; the key's own is used, and a different one given is refused)."""
    from tui_csr.cli.output import check_out, emit_request
    from tui_csr.cli.session import login, open_service
    from tui_csr.core.p11uri import parse_key_selector
    from tui_csr.errors import InputError

    selector = parse_key_selector(args.key)
    if args.always_authenticate:
        raise InputError("--always-authenticate applies to new key pairs; the key given with "
                         "--key keeps its own flags.", field="always_authenticate")
    if args.der and not args.out:
        raise InputError("--der writes binary: give --out FILE.", field="der")
    if args.out:
        check_out(args.out, args.force)
    if selector.token is not None and not settings.token and not settings.token_serial:
        settings.token = selector.token  # the URI names the token: open that one
    service = await open_service(settings, token=False)
    # Every input error that needs no key before the token is opened. The key spec is not known
    # yet: one that fits the padding asked for stands in, and what it alone fails (a profile's
    # key spec rule) is left to the check with the key's own spec.
    try:
        service.validate(replace(params, key_spec=args.key_spec or ("RSA2048" if args.pss
                                                                    else "P-256")))
    except InputError as exc:
        if args.key_spec or exc.field not in ("key_spec", "pss"):
            raise
    await login(service)
    req = await service.generate_for_key(selector, params,
                                         key_spec_given=bool(args.key_spec))
    emit_request(req, args)
    return 0

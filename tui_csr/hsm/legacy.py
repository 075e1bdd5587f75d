"""Marker objects made by earlier tui-csr versions: one private CKO_DATA object per key pair,
CKA_APPLICATION ``tui-csr``, CKA_LABEL the store's id, CKA_VALUE the key's CKA_ID in hex.

Nothing creates them any more (write-ahead intents in the store took their place), but a data
folder made by an earlier version still has them on its token: the orphan scan honours them
and they are removed once no longer needed. They are found by class and application only and
matched on their value here, never by a search on CKA_VALUE (tpm2-pkcs11 matches CKA_VALUE only
for objects whose value was read earlier in the process). Runs on the token thread.
"""

from __future__ import annotations

from typing import Any

from tui_csr.hsm.keys import MARKER_APPLICATION, find_objects, read_attributes


def legacy_markers(session: Any) -> list[tuple[bytes, str, Any]]:
    """(key id, store tag, object) of every legacy marker the session sees."""
    from pkcs11 import Attribute, ObjectClass

    out = []
    for obj in find_objects(session, {Attribute.CLASS: ObjectClass.DATA,
                                      Attribute.APPLICATION: MARKER_APPLICATION}):
        values = read_attributes(obj, ("VALUE", "LABEL"))
        try:
            key_id = bytes.fromhex(bytes(values.get("VALUE") or b"").decode())
        except (ValueError, UnicodeDecodeError):
            continue  # not one of ours after all
        out.append((key_id, str(values.get("LABEL") or ""), obj))
    return out


def remove_markers(session: Any, key_ids: set[bytes]) -> int:
    """Destroy the legacy markers naming ``key_ids``; returns how many were destroyed."""
    gone = 0
    for key_id, _tag, obj in legacy_markers(session):
        if key_id in key_ids:
            obj.destroy()
            gone += 1
    return gone

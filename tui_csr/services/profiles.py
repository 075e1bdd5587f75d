"""Request profiles: everyone lists and shows them; administrators add, edit and remove the
store's own (audited, like groups). Built-in profiles ship with the package and are never
changed; copy one (``add NAME --from tls-server``) to make a variant.

A group's policy names a profile. A policy that names no known profile (stores written before
profiles existed: a free-text label) sets no constraints; :meth:`Profiles.policy_problem` says so,
for ``groups list`` and the Groups tab.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING, Any

from tui_csr.core.models import AuditEntry, utcnow
from tui_csr.core.profiles import (
    BUILTIN_PROFILES,
    Profile,
    all_profiles,
    validate_profile,
    validate_profile_name,
)
from tui_csr.errors import InputError, NotFoundError

if TYPE_CHECKING:
    from tui_csr.services.context import ServiceContext


def _builtin_refusal(name: str, doing: str) -> InputError:
    return InputError(f"Profile '{name}' is built in and cannot be {doing}; copy it with "
                      f"`tui-csr profiles add NEW --from {name}` and change the copy.",
                      field="profile")


class Profiles:
    """The built-in and stored request profiles."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def list(self) -> list[Profile]:
        """Built-in profiles first (in their shipped order), then the stored ones by name."""
        stored = await asyncio.to_thread(self.ctx.store.list_profiles)
        return [*BUILTIN_PROFILES.values(), *[p for p in stored
                                               if p.name not in BUILTIN_PROFILES]]

    async def known(self) -> dict[str, Profile]:
        """Every profile by name."""
        return all_profiles(await asyncio.to_thread(self.ctx.store.list_profiles))

    async def get(self, name: str) -> Profile:
        """One profile by name (built-in or stored)."""
        key = (name or "").strip()
        if key.lower() in BUILTIN_PROFILES:
            return BUILTIN_PROFILES[key.lower()]
        try:
            return await asyncio.to_thread(self.ctx.store.get_profile, key)
        except NotFoundError:
            names = ", ".join(p.name for p in await self.list())
            raise NotFoundError(f"Profile '{key}' does not exist; profiles: {names}.",
                                field="profile") from None

    async def add(self, profile: Profile, *, copy_of: str | None = None,
                  changes: dict[str, Any] | None = None) -> Profile:
        """Store a new profile (administrators only): ``profile``, or a copy of ``copy_of``
        with ``changes`` applied. Version 1; audited."""
        self.ctx.require_admin("create request profiles")
        name = validate_profile_name(profile.name)
        if name in BUILTIN_PROFILES:
            raise InputError(f"Profile '{name}' is a built-in name; choose another.",
                             field="profile")
        base = await self.get(copy_of) if copy_of else profile
        new = validate_profile(dataclasses.replace(
            base, **(changes or {}), name=name, version=1, builtin=False,
            created_by=self.ctx.user, updated=utcnow()))
        audit = AuditEntry("profile-add", self.ctx.user, name,
                           f"v1{f' from {copy_of}' if copy_of else ''}")
        await asyncio.to_thread(self.ctx.store.add_profile, new, audit)
        return new

    async def edit(self, name: str, changes: dict[str, Any]) -> Profile:
        """Change a stored profile (administrators only): its version goes up by one; an edit
        that raced another administrator's is refused. Audited with the changed rules."""
        self.ctx.require_admin("edit request profiles")
        if (name or "").strip().lower() in BUILTIN_PROFILES:
            raise _builtin_refusal(name.strip().lower(), "edited")
        current = await asyncio.to_thread(self.ctx.store.get_profile, name)
        new = validate_profile(dataclasses.replace(
            current, **changes, name=current.name, version=current.version + 1,
            updated=utcnow()))
        changed = sorted(k for k in changes if getattr(current, k) != getattr(new, k))
        audit = AuditEntry("profile-edit", self.ctx.user, current.name,
                           f"v{new.version}: {', '.join(changed) or 'no change'}")
        return await asyncio.to_thread(self.ctx.store.update_profile, new,
                                       expected_version=current.version, audit=audit)

    async def remove(self, name: str) -> None:
        """Remove a stored profile no group uses (administrators only, audited)."""
        self.ctx.require_admin("remove request profiles")
        if (name or "").strip().lower() in BUILTIN_PROFILES:
            raise _builtin_refusal(name.strip().lower(), "removed")
        audit = AuditEntry("profile-remove", self.ctx.user, name.strip())
        await asyncio.to_thread(self.ctx.store.remove_profile, name, audit)

    async def policy_problem(self, policy: str) -> str | None:
        """None when ``policy`` (a group's) names a profile or is empty; else the sentence
        saying it is a label without constraints."""
        text = (policy or "").strip()
        if not text or text in await self.known():
            return None
        return f"'{text}' names no profile: a label without constraints"

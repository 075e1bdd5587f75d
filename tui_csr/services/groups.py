"""Certificate groups: everyone lists them, administrators change them (audited)."""

from __future__ import annotations

import asyncio
import builtins
from typing import TYPE_CHECKING

from tui_csr.core.models import AuditEntry, Group, Request, Status
from tui_csr.core.rules import check_fit, validate_group_name, validate_text
from tui_csr.errors import InputError

if TYPE_CHECKING:
    from tui_csr.services.context import ServiceContext


class Groups:
    """The certificate groups of the store."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def list(self) -> list[Group]:
        """All certificate groups, by name."""
        return await asyncio.to_thread(self.ctx.store.list_groups)

    async def usage(self) -> dict[str, tuple[int, int]]:
        """Per group: (pending requests, issued certificates)."""
        return await asyncio.to_thread(self.ctx.store.group_usage)

    async def add(self, name: str, policy: str = "", description: str = "") -> Group:
        """Create a group (administrators only)."""
        self.ctx.require_admin("create certificate groups")
        group = Group(name=validate_group_name(name),
                      policy=validate_text(policy, "policy", "policy"),
                      description=validate_text(description, "description", "description"),
                      created_by=self.ctx.user)
        audit = AuditEntry("group-add", self.ctx.user, group.name, f"policy={group.policy}")
        await asyncio.to_thread(self.ctx.store.add_group, group, audit)
        return group

    async def rename(self, old: str, new: str) -> None:
        """Rename a group everywhere (administrators only)."""
        self.ctx.require_admin("rename certificate groups")
        new = validate_group_name(new)
        audit = AuditEntry("group-rename", self.ctx.user, old, f"-> {new}")
        await asyncio.to_thread(self.ctx.store.rename_group, old, new, audit)

    async def edit(self, name: str, *, new_name: str | None = None, policy: str,
                   description: str) -> Group:
        """Change a group's name, policy and description (administrators only, audited): the
        policy and description in one write, then the rename (which rewrites every request
        naming the group) when the name changed. Returns the group as stored."""
        self.ctx.require_admin("edit certificate groups")
        policy = validate_text(policy, "policy", "policy")
        description = validate_text(description, "description", "description")
        target = validate_group_name(new_name) if new_name is not None else None
        current = await asyncio.to_thread(self.ctx.store.get_group, name)
        if target is not None and target != current.name:
            # Checked before anything is written: a clash must not leave half an edit behind.
            clash = next((g for g in await self.list()
                          if g.name.casefold() == target.casefold()
                          and g.name.casefold() != current.name.casefold()), None)
            if clash is not None:
                raise InputError(f"Group '{clash.name}' already exists.", field="group")
        group = current
        if (policy, description) != (current.policy, current.description):
            audit = AuditEntry("group-edit", self.ctx.user, current.name,
                               f"policy={policy} description={description}")
            group = await asyncio.to_thread(self.ctx.store.update_group, current.name,
                                            policy=policy, description=description,
                                            audit=audit)
        if target is not None and target != current.name:
            await self.rename(current.name, target)
            group = await asyncio.to_thread(self.ctx.store.get_group, target)
        return group

    async def misfits(self, name: str) -> builtins.list[tuple[Request, str]]:
        """The pending requests of group ``name`` that do not fit the profiles of their groups
        as the policies are now, each with the first rule it breaks (one sentence). A policy
        applies to requests made after it changed; these are the ones made before that the
        new policy would have refused: the administrator decides what becomes of them."""
        from tui_csr.core.profiles import all_profiles

        store = self.ctx.store
        groups = await asyncio.to_thread(store.list_groups)
        policies = {g.name: g.policy for g in groups}
        known = all_profiles(await asyncio.to_thread(store.list_profiles))
        key = name.casefold()

        def attestation_problem() -> str | None:  # asked only when a profile requires one
            from tui_csr.attestation.support import attestation_support

            return attestation_support(self.ctx.settings, self.ctx.token_info)

        out: builtins.list[tuple[Request, str]] = []
        for request in await asyncio.to_thread(store.list_requests, Status.PENDING):
            if key not in {g.casefold() for g in request.groups}:
                continue
            try:
                check_fit(request, request.groups, group_policies=policies, profiles=known,
                          attestation_problem=attestation_problem)
            except InputError as exc:
                out.append((request, exc.message))
        return out

    async def remove(self, name: str) -> None:
        """Remove an empty group (administrators only)."""
        self.ctx.require_admin("remove certificate groups")
        audit = AuditEntry("group-remove", self.ctx.user, name)
        await asyncio.to_thread(self.ctx.store.remove_group, name, audit)

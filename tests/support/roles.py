"""The role groups and their permissions, as the data migrations leave them.

A transactional test ends by flushing every table: the permissions come back
(Django re-creates them after a flush) but the role groups the data migrations
made (``0002_roles``, ``0009_role_permissions``) do not, so a test that ran
after one in the same process would find no roles. ``restore_roles`` puts them
back, with the same grants.
"""

from __future__ import annotations

from importlib import import_module

ROLES = ("viewer", "operator", "admin")


def restore_roles() -> None:
    from django.contrib.auth.models import Group, Permission

    if Group.objects.filter(name__in=ROLES).count() == len(ROLES):
        return
    grants: dict[str, list[tuple[str, str]]] = import_module(
        "dashboard.migrations.0009_role_permissions"
    ).GRANTS
    wanted = {name for names in grants.values() for name in names}
    found = {
        (p.content_type.app_label, p.codename): p
        for p in Permission.objects.select_related("content_type").filter(
            codename__in=[codename for _, codename in wanted]
        )
    }
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.add(*(found[name] for name in grants.get(role, ()) if name in found))

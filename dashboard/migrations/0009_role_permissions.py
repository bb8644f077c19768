"""Give the role groups the model permissions 0002_roles promised and never granted.

Without them a non-superuser admin-role user (is_staff, see ensure_user) got
"You don't have permission to view or edit anything" on /admin/: the audited
dead-letter actions and the audit trail were out of reach.

- admin: view every dashboard table, the users and groups, and the login
  throttling records; delete a login's access attempts (that unlocks it).
  Viewing is enough for the audited dead-letter actions (requeue, discard,
  purge): they check the role themselves, and no table is edited by hand.
- operator: view what the dashboard shows it anyway, and the audit trail.
- viewer: view what the dashboard shows it anyway.

Only admin-role users are staff, so the operator and viewer grants matter only
if someone makes such a user staff by hand.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

SHOWN = [
    ("dashboard", "view_cluster"),
    ("dashboard", "view_deadletter"),
    ("dashboard", "view_manageddeadletterqueue"),
    ("dashboard", "view_job"),
    ("dashboard", "view_consumer"),
    ("dashboard", "view_throughputsample"),
]
GRANTS = {
    "viewer": SHOWN,
    "operator": [*SHOWN, ("dashboard", "view_auditentry")],
    "admin": [
        *SHOWN,
        ("dashboard", "view_auditentry"),
        ("dashboard", "view_deadletterbody"),
        ("auth", "view_user"),
        ("auth", "view_group"),
        ("axes", "view_accessattempt"),
        ("axes", "delete_accessattempt"),
        ("axes", "view_accessattemptexpiration"),
        ("axes", "view_accesslog"),
        ("axes", "view_accessfailurelog"),
    ],
}


def _permissions(apps, names):
    Permission = apps.get_model("auth", "Permission")
    found = {
        (p.content_type.app_label, p.codename): p
        for p in Permission.objects.select_related("content_type").filter(
            codename__in=[codename for _, codename in names]
        )
    }
    missing = [name for name in names if name not in found]
    if missing:
        raise RuntimeError(f"permissions not found: {missing}")
    return [found[name] for name in names]


def grant(apps, schema_editor):
    # Permissions are normally created after the last migration (post_migrate);
    # on a fresh database they do not exist yet at this point, so create them.
    for label in ("auth", "axes", "dashboard"):
        app_config = apps.get_app_config(label)
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    for role, names in GRANTS.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.add(*_permissions(apps, names))


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for role, names in GRANTS.items():
        group = Group.objects.filter(name=role).first()
        if group is not None:
            group.permissions.remove(*_permissions(apps, names))


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("axes", "0010_accessattemptexpiration"),
        ("dashboard", "0007_deadletter_claimed_at"),
    ]
    operations = [migrations.RunPython(grant, revoke)]

"""`manage.py check --deploy` is clean with the production settings the README documents."""

from __future__ import annotations

import re
import secrets
import subprocess

from tests.conftest import PYTHON, ROOT, python_env


def readme_production_env() -> dict[str, str]:
    """The KEY=value lines of the README's "Production settings" block."""
    text = (ROOT / "README.md").read_text()
    section = text.split("### Production settings", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None, "no sh block under Production settings"
    pairs = (line.split("=", 1) for line in block.group(1).splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs if not key.startswith("#")}


def check_deploy(tmp_path, **env: str) -> subprocess.CompletedProcess[str]:
    base = python_env(
        DJANGO_SETTINGS_MODULE="dashboard.settings",
        MQB_STATE_DIR=str(tmp_path / "var"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
    )
    for name in list(base):
        if name.startswith(("MQB_SECURE", "MQB_SSL", "MQB_BEHIND", "DJANGO_")):
            del base[name]
    return subprocess.run(
        [PYTHON, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env={**base, **env, "DJANGO_SETTINGS_MODULE": "dashboard.settings"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_it_is_clean_with_the_readme_production_settings(tmp_path):
    env = readme_production_env()
    key_file = tmp_path / "secret_key"
    key_file.write_text(secrets.token_urlsafe(50))
    env["DJANGO_SECRET_KEY_FILE"] = str(key_file)  # the README's path, made real

    done = check_deploy(tmp_path, **env)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout
    assert env["MQB_SSL_REDIRECT"] == "true" and int(env["MQB_SECURE_HSTS_SECONDS"]) >= 31536000


def test_the_defaults_are_for_plain_http_on_localhost(tmp_path):
    done = check_deploy(tmp_path)

    assert done.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in done.stderr + done.stdout


def test_every_twin_of_a_django_middleware_is_a_subclass_of_it():
    from django.utils.module_loading import import_string

    from dashboard.core.middleware_list import TWINS

    for ours, django_name in TWINS.items():
        assert issubclass(import_string(ours), import_string(django_name)), ours

"""The production run files agree: ops/Procfile.prod, ops/systemd/, the environment file, nginx.

``make topology`` runs the Procfile and a server runs the systemd units; the two
must name the same processes with the same commands, or one of them drifts
unseen. Each Procfile command, with the example environment's values (or its
own defaults), is compared with its unit's ExecStart, with the unit's
instance (``%i``) filled in and its paths taken relative to WorkingDirectory.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.support.topology import (
    ROOT,
    SYSTEMD,
    environment_of_example,
    expand,
    procfile_entries,
    unit_settings,
)

# Procfile line -> (unit file, instance).
UNITS = {
    "web1": ("mqboard-web@.service", "8001"),
    "web2": ("mqboard-web@.service", "8002"),
    "collector1": ("mqboard-collector@.service", "1"),
    "collector2": ("mqboard-collector@.service", "2"),
    "tasks": ("mqboard-tasks.service", ""),
    "jobs": ("mqboard-jobs.service", ""),
    "beat": ("mqboard-beat.service", ""),
}


def unit_name(unit: str, instance: str) -> str:
    return unit.replace("@.", f"@{instance}.") if instance else unit


def exec_start(unit: str, instance: str, values: dict[str, str]) -> str:
    settings = unit_settings(SYSTEMD / unit)
    command = settings["ExecStart"].replace("%i", instance).replace("%%", "%")
    workdir = settings["WorkingDirectory"].rstrip("/") + "/"
    return expand(command, values).replace(workdir, "")


def test_it_has_a_unit_for_every_procfile_line_and_no_other():
    assert list(procfile_entries()) == list(UNITS)
    units = {path.name for path in SYSTEMD.glob("*.service")}
    assert units == {unit for unit, _ in UNITS.values()}


@pytest.mark.parametrize("name", list(UNITS))
def test_the_procfile_line_and_its_unit_run_the_same_command(name):
    values = environment_of_example()
    unit, instance = UNITS[name]
    assert expand(procfile_entries()[name], values) == exec_start(unit, instance, values)


def test_every_unit_reads_the_environment_file_and_belongs_to_the_target():
    target = unit_settings(SYSTEMD / "mqboard.target")
    wanted = " ".join(
        line.partition("=")[2]
        for line in (SYSTEMD / "mqboard.target").read_text().splitlines()
        if line.startswith("Wants=")
    ).split()
    assert sorted(wanted) == sorted(unit_name(u, i) for u, i in UNITS.values())
    assert target["WantedBy"] == "multi-user.target"
    for path in SYSTEMD.glob("*.service"):
        settings = unit_settings(path)
        assert settings["EnvironmentFile"] == "/etc/mqboard/env", path.name
        assert settings["PartOf"] == "mqboard.target" and settings["Restart"] == "on-failure"


def test_systemd_accepts_the_units(tmp_path):
    """``systemd-analyze verify``: systemd's own parser reads every unit (and its target), with
    the checkout standing for /srv/mqboard, so each ExecStart names a real executable."""
    env = tmp_path / "env"
    env.write_text((ROOT / "ops" / "mqboard.env.example").read_text())
    for path in SYSTEMD.iterdir():
        text = path.read_text().replace("/etc/mqboard/env", str(env))
        (tmp_path / path.name).write_text(text.replace("/srv/mqboard", str(ROOT)))
    names = [unit_name(unit, instance) for unit, instance in UNITS.values()] + ["mqboard.target"]
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *(f"./{name}" for name in names)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


def test_nginx_sends_requests_to_the_procfiles_web_processes():
    values = environment_of_example()
    web_ports = [
        expand(procfile_entries()[n], {}).split(" -p ")[1].split()[0] for n in ("web1", "web2")
    ]
    addresses = [f"127.0.0.1:{port}" for port in web_ports]
    assert values["MQB_WEB_ADDRESSES"].split() == addresses
    rendered = subprocess.run(
        [str(ROOT / "ops" / "nginx.sh"), "render"],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "MQB_STATE_DIR": str(ROOT / "var")},
    ).stdout
    assert "{{" not in rendered.split("\nupstream", 1)[1]
    for address in addresses:
        assert f"server {address} max_fails=1" in rendered


def test_the_rendered_config_is_valid_nginx(tmp_path):
    site = tmp_path / "mqboard.conf"
    site.write_text(
        subprocess.run(
            [str(ROOT / "ops" / "nginx.sh"), "render"],
            capture_output=True,
            text=True,
            check=True,
            env={
                "PATH": "/usr/bin:/bin:/usr/sbin:/sbin",
                "MQB_STATE_DIR": str(tmp_path),
                "MQB_NGINX_ACCESS_LOG": str(tmp_path / "access.log"),
                "MQB_NGINX_SERVER_NAME": "mqboard.example.com",
            },
        ).stdout
    )
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path}/nginx.pid;\nevents {{}}\n"
        f"http {{ include /etc/nginx/mime.types; include {site}; }}\n"
    )
    check = subprocess.run(
        [
            "/usr/sbin/nginx",
            "-t",
            "-p",
            str(tmp_path),
            "-c",
            str(conf),
            "-e",
            str(tmp_path / "e.log"),
        ],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr

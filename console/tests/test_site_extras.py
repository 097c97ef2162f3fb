"""What a teacher meets around the console (issue 24, point 8): the admin's labels and titles, no unusable
"Groups" section, /favicon.ico, and `manage.py createsuperuser` with DEBUG off."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from live.models import AttendanceSession
from tests.support import LocalSite, make_class, make_user

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def saved_session(db, client, teacher):
    ann = make_user("student", name="Ann Archer")
    klass = make_class(teacher, [ann], name="Maths 101")
    LocalSite(client).session(teacher, klass.id, {ann.id: "present"})
    return AttendanceSession.objects.get(klass=klass)


def test_the_admin_says_class_not_klass(admin_site_client, saved_session):
    for path in (
        "/admin/live/attendancesession/",
        f"/admin/live/attendancesession/{saved_session.pk}/change/",
        "/admin/live/attendance/",
    ):
        response = admin_site_client.get(path)
        assert response.status_code == 200, path
        html = response.content.decode()
        assert "Klass" not in html, path
        assert "Maths 101" in html, path


def test_a_session_page_is_titled_by_its_class_and_start(admin_site_client, saved_session):
    response = admin_site_client.get(f"/admin/live/attendancesession/{saved_session.pk}/change/")
    html = response.content.decode()
    title = html[html.index("<title>") : html.index("</title>")]
    assert f"Maths 101, started {saved_session.started_at:%Y-%m-%d %H:%M:%S}" in title, title
    assert str(saved_session.klass_id) not in title


def test_the_admin_has_no_groups_section(admin_site_client):
    html = admin_site_client.get("/admin/").content.decode()
    assert "Groups" not in html
    assert admin_site_client.get("/admin/auth/group/").status_code == 404


def test_favicon_is_the_consoles_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert b"".join(response) == (ROOT / "console" / "static" / "console" / "icon.svg").read_bytes()
    assert "max-age=86400" in response["Cache-Control"]


def _manage(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY", "JWT_SECRET")}
    clean.update(DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", **env)
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args], cwd=tmp_path, env=clean, capture_output=True, text=True,
        timeout=120,
    )


def test_createsuperuser_with_debug_off(tmp_path):
    # Without a SECRET_KEY the settings refuse to start: one clear line, not a traceback.
    refused = _manage(tmp_path, "createsuperuser", "--noinput", "--email", "root@example.com", DEBUG="0")
    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr
    assert refused.stderr.startswith("manage.py: Refusing to start with DEBUG off and the default SECRET_KEY")
    # With one, it works.
    secret = {"DEBUG": "0", "SECRET_KEY": "k" * 50, "DJANGO_SUPERUSER_PASSWORD": "secret123"}
    assert _manage(tmp_path, "migrate", "-v0", **secret).returncode == 0
    made = _manage(tmp_path, "createsuperuser", "--noinput", "--email", "root@example.com", "--name", "Root", **secret)
    assert made.returncode == 0, made.stderr
    assert "Superuser created successfully." in made.stdout

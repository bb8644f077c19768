"""The fencing token (``dashboard.core.leader``) on the test database, and the leader
shown on the overview and by ``GET /api/collector``.

The lease itself is exercised by real collector processes in
``test_collector_lease.py``; here one process plays both leaders: it takes a token,
then a "newer leader" takes the next one, and the first one's fenced write must
roll back and end its term.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.utils import timezone

from dashboard.core import leader
from dashboard.core.leader import LeaseLost, fenced, get_collector_status, take_token
from dashboard.models import CollectorMember

pytestmark = pytest.mark.django_db


@pytest.fixture
def under_lease() -> Iterator[list[str]]:
    """This test process behaves as a collector under a lease; ``lost`` records term ends."""
    lost: list[str] = []
    leader.enable(5.0)
    yield lost
    leader.set_token(None)
    leader._fenced = False


def _write(pid: int) -> int:
    now = timezone.now()
    return CollectorMember.objects.create(host="h", pid=pid, started_at=now, seen_at=now).pk


def test_it_commits_a_fenced_write_while_leading(under_lease):
    leader.set_token(take_token("here", 1), on_lost=lambda: under_lease.append("lost"))
    fenced(_write)(101)
    assert CollectorMember.objects.filter(pid=101).exists()
    assert under_lease == []


def test_a_newer_token_rolls_the_write_back_and_ends_the_term(under_lease):
    mine = take_token("here", 1)
    leader.set_token(mine, on_lost=lambda: under_lease.append("lost"))
    assert take_token("there", 2) == mine + 1  # another collector took the lease
    with pytest.raises(LeaseLost, match=f"token {mine} is fenced off"):
        fenced(_write)(102)
    assert not CollectorMember.objects.filter(pid=102).exists()
    assert under_lease == ["lost"]


def test_it_refuses_a_write_once_the_term_ended(under_lease):
    leader.set_token(take_token("here", 1))
    leader.set_token(None)
    with pytest.raises(LeaseLost, match="does not lead"):
        fenced(_write)(103)
    assert not CollectorMember.objects.filter(pid=103).exists()


def test_outside_a_collector_under_a_lease_it_checks_nothing():
    fenced(_write)(104)
    assert CollectorMember.objects.filter(pid=104).exists()


def _member(pid: int, *, leading: bool, seen: float = 0.0) -> None:
    now = timezone.now() - timedelta(seconds=seen)
    CollectorMember.objects.create(host="box-1", pid=pid, started_at=now, seen_at=now,
                                   is_leader=leading)  # fmt: skip


def test_the_overview_and_the_api_show_the_leader_and_the_standbys(client, viewer):
    take_token("box-1", 4242)
    _member(4242, leading=True)
    _member(4243, leading=False)
    _member(4244, leading=False)
    _member(4245, leading=False, seen=3600)  # long gone: not counted
    client.force_login(viewer)
    page = client.get("/").content.decode()
    assert 'id="collector-status" data-leading="true"' in page
    assert "box-1</span> (pid 4242) leads since" in page
    assert "lease token 1; 2 standing by." in page
    data = client.get("/api/collector").json()
    assert data["leading"] is True
    assert (data["host"], data["pid"], data["token"], data["standbys"]) == ("box-1", 4242, 1, 2)
    assert data["since"] and data["seen_at"]


def test_without_a_running_leader_it_says_so(client, viewer):
    take_token("box-1", 4242)
    _member(4242, leading=True, seen=3600)
    client.force_login(viewer)
    page = client.get("/").content.decode()
    assert 'id="collector-status" data-leading="false"' in page
    assert "No running collector leads" in page
    status = get_collector_status()
    assert not status.leading and status.token == 1 and status.standbys == 0
    assert client.get("/api/collector").json()["leading"] is False


def test_the_api_answers_401_without_login(client):
    assert client.get("/api/collector").status_code == 401

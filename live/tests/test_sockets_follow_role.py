"""Sockets follow their account's role (docs/production.md): a role change closes the user's open sockets, at once
when made through the ORM (the API, the admin, a shell) and by the periodic account check otherwise. Over the wire
(through the real admin): accounts/tests/test_wire_role_change.py."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from accounts.models import User
from live import commands
from live.tests.test_consumer import expect_revoked
from tests.support import comm_ask, comm_silent, make_class, make_user, mark, marked, token_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def people(transactional_db):
    teacher, student = make_user("teacher"), make_user("student")
    klass = make_class(teacher, [student])
    return teacher, student, klass


async def test_a_role_change_saved_through_the_orm_closes_the_users_sockets_at_once(communicators, people):
    teacher, student, _ = people
    sockets = [await communicators(token_for(teacher)) for _ in range(2)]
    other = await communicators(token_for(student))

    def demote() -> None:
        user = User.objects.get(pk=teacher.pk)
        user.role = "student"
        user.save()  # what the admin's change form does

    await database_sync_to_async(demote)()
    for ws in sockets:
        await expect_revoked(ws)
    await comm_silent(other)


async def test_a_role_change_through_the_admin_closes_the_users_sockets(communicators, people, admin_site_client):
    teacher, _, _ = people
    ws = await communicators(token_for(teacher))
    form = {"name": teacher.name, "email": teacher.email, "role": "student", "password": "", "is_active": "on"}

    response = await database_sync_to_async(admin_site_client.post)(f"/admin/accounts/user/{teacher.id}/change/", form)
    assert response.status_code == 302, response.content
    await expect_revoked(ws)


async def test_saves_that_keep_the_role_leave_the_sockets_open(communicators, people):
    teacher, student, klass = people
    await database_sync_to_async(commands.start_session)(teacher, klass.id)
    ws = await communicators(token_for(teacher))

    def edit() -> None:
        user = User.objects.get(pk=teacher.pk)
        user.name = "Renamed"
        user.save()
        user.role = "student"  # changed in memory but not saved: update_fields leaves the role out
        user.save(update_fields=["name"])
        fresh = User(pk=teacher.pk, name="Renamed", email=teacher.email, role="teacher", password=teacher.password)
        fresh.save(force_update=True)  # an instance not read from the database: its role is not known to have changed

    await database_sync_to_async(edit)()
    assert await comm_ask(ws, mark(student.id)) == marked(student.id, "present")


async def test_a_second_role_change_on_the_same_instance_is_seen_too(communicators, people):
    teacher, student, _ = people

    def promote_then_demote() -> None:
        user = User.objects.get(pk=student.pk)
        user.role = "teacher"
        user.save()

    ws = await communicators(token_for(student))
    await database_sync_to_async(promote_then_demote)()
    await expect_revoked(ws)

    created = await database_sync_to_async(make_user)("teacher")
    ws = await communicators(token_for(created))

    def demote_created() -> None:
        created.role = "student"  # the instance create_user saved: its stored role is known
        created.save()

    await database_sync_to_async(demote_created)()
    await expect_revoked(ws)


async def test_the_account_check_closes_sockets_whose_role_changed_without_a_signal(communicators, people):
    """A role changed by a write that sends no signal (a bulk update, raw SQL): the periodic check."""
    from live import upkeep

    teacher, student, _ = people
    ws = await communicators(token_for(teacher))
    other = await communicators(token_for(student))
    await database_sync_to_async(User.objects.filter(pk=teacher.pk).update)(role="student")
    assert await upkeep.check_accounts() == 1
    await expect_revoked(ws)
    await comm_silent(other)
    assert await upkeep.check_accounts() == 0

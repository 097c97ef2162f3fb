"""TODAY_SUMMARY counts the marks of the students enrolled now — those DONE persists: a mark of a student deleted or
removed from the class since does not count (it said `present 1, total 1`, then DONE said `present 0`)."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from accounts.models import User
from classes.models import Enrollment
from live import commands
from live.selectors import Session
from tests.support import comm_ask, comm_recv, done, frame, make_class, make_user, mark, marked, summary, token_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_counts_only_the_given_students():
    session = Session("s", "t", "c", "2024-01-01T00:00:00.000Z", {"a": "present", "b": "absent", "gone": "present"})
    assert session.counts() == {"present": 2, "absent": 1, "late": 0, "excused": 0, "total": 3}
    assert session.counts({"a", "b", "unmarked"}) == {"present": 1, "absent": 1, "late": 0, "excused": 0, "total": 2}


@pytest.fixture
def people(transactional_db):
    teacher, kept, leaving = make_user("teacher"), make_user("student"), make_user("student")
    return teacher, kept, leaving, make_class(teacher, [kept, leaving])


@pytest.mark.parametrize("how", ["deleted", "removed"])
async def test_a_student_deleted_or_removed_after_their_mark_is_not_counted(communicators, people, how):
    teacher, kept, leaving, klass = people
    await database_sync_to_async(commands.start_session)(teacher, klass.id)
    ws = await communicators(token_for(teacher))
    assert await comm_ask(ws, mark(leaving.id, "present")) == marked(leaving.id, "present")
    assert await comm_ask(ws, mark(kept.id, "absent")) == marked(kept.id, "absent")
    assert await comm_ask(ws, frame("TODAY_SUMMARY")) == summary(1, 1)

    if how == "deleted":
        await database_sync_to_async(User.objects.filter(pk=leaving.pk).delete)()
    else:
        await database_sync_to_async(Enrollment.objects.filter(student_id=leaving.pk).delete)()
    assert await comm_ask(ws, frame("TODAY_SUMMARY")) == summary(0, 1)
    await ws.send_to(text_data=frame("DONE"))
    assert await comm_recv(ws) == done(0, 1, 1)  # consistent: the same student counted by both

"""Class rules: create, enrol, read. Query counts stay constant whatever the class size."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, connections, router, transaction
from django.db.models import Count, F, Func, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.signals import post_save

from accounts.models import Role, User
from accounts.schemas import comparable_email
from accounts.services import remembered_members
from classes.models import Class, Enrollment
from classes.schemas import ClassDetail, ClassListItem, ClassSummary, RosterResult
from common import messages
from common.errors import Forbidden, NotFound
from common.fields import is_object_id
from common.prepared import PreparedInstance, PreparedQuery

# The reads every class page makes, compiled once (common/prepared.py); each call is still one query.
_student_ids = PreparedQuery(
    Enrollment,
    lambda class_id: Enrollment.objects.filter(klass_id=class_id).order_by("id").values_list("student_id", flat=True),
)
_enrolment = PreparedQuery(
    Enrollment,
    lambda class_id, student_id: Enrollment.objects.filter(klass_id=class_id, student_id=student_id).values_list(
        "pk", flat=True
    )[:1],
)
_class_by_id = PreparedInstance(Class, lambda class_id: Class.objects.filter(pk=class_id))
_members = PreparedQuery(
    User,
    lambda class_id: (
        User.objects.filter(enrollments__klass_id=class_id)
        .order_by("enrollments__id")
        .values_list("id", "name", "email")
    ),
)
# COUNT(*), not COUNT(id): the same number (an id is never null), counted from the class index alone on SQL — the
# id is a string key, not in that index, so COUNT(id) read every enrolment's row too (GET /classes: a class of
# 1,000 is 1,000 rows).
_sizes = PreparedQuery(
    Enrollment,
    lambda class_ids: Enrollment.objects.filter(klass_id__in=class_ids)
    .order_by()
    .values("klass_id")
    .annotate(n=Count("*"))
    .values_list("klass_id", "n"),
)


def _size(class_id: str) -> Subquery:
    """The class's enrolled students, counted in the query that lists it (SQL): a correlated COUNT over the class
    index, no GROUP BY — the sizes cost no second query, and a class of 1,000 is counted, not grouped (~half the
    database's time for GET /classes on SQLite). Func, not Count: an aggregate would group the outer query; and
    COUNT(*), not of a column, which SQLite would check for null in each of the class's index entries (a third
    more of the query's time)."""
    return Subquery(
        Enrollment.objects.filter(klass_id=OuterRef(class_id))
        .order_by()
        .annotate(n=Func(template="COUNT(*)", output_field=IntegerField()))
        .values("n")
    )


def _classes_taught(teacher_id: str) -> QuerySet[Class]:
    return Class.objects.filter(teacher_id=teacher_id).order_by("-id")


# The joined columns under flat names: see live.history.session_records for why.
def _enrolments_of(student_id: str) -> QuerySet[Any]:  # (annotated: the stubs see no klass_name on Enrollment)
    return (
        Enrollment.objects.filter(student_id=student_id)
        .order_by("-id")
        .annotate(klass_name=F("klass__class_name"), klass_teacher=F("klass__teacher_id"))
    )


# A teacher's classes and a student's, as (id, name, teacher): with their sizes on SQL, without on MongoDB.
_taught = PreparedQuery(
    Class, lambda teacher_id: _classes_taught(teacher_id).values_list("id", "class_name", "teacher_id")
)
_taught_sized = PreparedQuery(
    Class,
    lambda teacher_id: (
        _classes_taught(teacher_id).annotate(size=_size("id")).values_list("id", "class_name", "teacher_id", "size")
    ),
)
_enrolled_in = PreparedQuery(
    Enrollment,
    lambda student_id: _enrolments_of(student_id).values_list("klass_id", "klass_name", "klass_teacher"),
)
_enrolled_in_sized = PreparedQuery(
    Enrollment,
    lambda student_id: (
        _enrolments_of(student_id)
        .annotate(size=_size("klass_id"))
        .values_list("klass_id", "klass_name", "klass_teacher", "size")
    ),
)

def student_ids(class_id: str) -> list[str]:
    """Enrolled students' ids, in enrolment order (one query)."""
    return _student_ids(class_id)


def is_enrolled(class_id: str, student_id: str) -> bool:
    return bool(_enrolment(class_id, student_id))


def get_class(class_id: str) -> Class:
    """The class, or NotFound — a malformed id is simply not found."""
    klass = _class_by_id(class_id) if is_object_id(class_id) else None
    if klass is None:
        raise NotFound(messages.CLASS_NOT_FOUND)
    return klass


def owned_class(class_id: str, teacher: User) -> Class:
    """Existence first, then ownership."""
    klass = get_class(class_id)
    if klass.teacher_id != teacher.id:
        raise Forbidden(messages.NOT_CLASS_TEACHER)
    return klass


def enrolled_class(class_id: str, student: User) -> Class:
    """Existence first, then enrolment."""
    klass = get_class(class_id)
    if not is_enrolled(klass.id, student.id):
        raise Forbidden(messages.NOT_ENROLLED)
    return klass


def class_summary(klass: Class) -> ClassSummary:
    return ClassSummary(
        id=klass.id,
        className=klass.class_name,
        teacherId=klass.teacher_id,
        studentIds=student_ids(klass.id),
        minRate=klass.min_rate,
        maxConsecutiveAbsences=klass.max_consecutive_absences,
    )


def update_class(
    klass: Class,
    class_name: str | None = None,
    min_rate: float | None = None,
    max_consecutive_absences: int | None = None,
) -> Class:
    """Rename the class and/or change its at-risk settings; what is not given stays."""
    changed = {
        field: value
        for field, value in (
            ("class_name", class_name),
            ("min_rate", min_rate),
            ("max_consecutive_absences", max_consecutive_absences),
        )
        if value is not None
    }
    if changed:
        for field, value in changed.items():
            setattr(klass, field, value)
        klass.save(update_fields=list(changed))
    return klass


def create_class(teacher: User, class_name: str) -> Class:
    return Class.objects.create(class_name=class_name, teacher=teacher)


def add_student(klass: Class, student_id: str) -> Class:
    """Enrol a student; enrolling twice keeps one entry."""
    if not (is_object_id(student_id) and User.objects.filter(pk=student_id, role=Role.STUDENT).exists()):
        raise NotFound(messages.STUDENT_NOT_FOUND)
    if not is_enrolled(klass.id, student_id):
        enrol_one(klass, student_id)
    return klass


def enrol_one(klass: Class, student_id: str) -> bool:
    """Enrol one student; False if they were enrolled already (concurrently by another request: still one
    entry)."""
    try:
        with transaction.atomic():
            Enrollment.objects.create(klass=klass, student_id=student_id)
    except IntegrityError:
        return False
    return True


def enrol_by_email(klass: Class, emails: list[str]) -> RosterResult:
    """Enrol the existing student accounts among `emails` (compared as log-in does), each once.

    Three queries whatever the number (the accounts, the class's enrolments among them, one bulk insert); each
    new enrolment is announced as one made by add-student is (the post_save signal that live.notify turns
    into a membership notice after commit: bulk_create sends none itself)."""
    wanted = list(dict.fromkeys(comparable_email(email) for email in emails))
    accounts = {
        email: (pk, role)
        for pk, email, role in User.objects.filter(email__in=wanted).values_list("id", "email", "role")
    }
    student_of = {email: pk for email, (pk, role) in accounts.items() if role == Role.STUDENT}
    enrolled = set(
        Enrollment.objects.filter(klass_id=klass.id, student_id__in=list(student_of.values())).values_list(
            "student_id", flat=True
        )
    )
    result = RosterResult(
        added=[pk for email in wanted if (pk := student_of.get(email)) is not None and pk not in enrolled],
        alreadyEnrolled=[pk for email in wanted if (pk := student_of.get(email)) is not None and pk in enrolled],
        notFound=[email for email in wanted if email not in accounts],
        notStudents=[email for email in wanted if email in accounts and email not in student_of],
    )
    if result.added:
        rows = [Enrollment(klass=klass, student_id=pk) for pk in result.added]
        try:
            with transaction.atomic():
                Enrollment.objects.bulk_create(rows)
        except IntegrityError:
            # Some were enrolled concurrently. Where the failed insert is not rolled back (MongoDB: Django's atomic
            # is no transaction there) the rows before the conflict are in: those are this request's (their ids
            # were made here). The others one at a time, as add-student does, each where it now belongs.
            inserted = set(Enrollment.objects.filter(pk__in=[row.pk for row in rows]).values_list("pk", flat=True))
            ours = [row for row in rows if row.pk in inserted]
            created = {row.student_id: True for row in ours}
            created |= {row.student_id: enrol_one(klass, row.student_id) for row in rows if row.pk not in inserted}
            _announce_enrolments(ours)
            return result.model_copy(
                update={
                    "added": [pk for pk in result.added if created[pk]],
                    "alreadyEnrolled": [
                        pk for email in wanted if (pk := student_of.get(email)) is not None and not created.get(pk)
                    ],
                }
            )
        _announce_enrolments(rows)
    return result


def _announce_enrolments(rows: list[Enrollment]) -> None:
    """What Enrollment.objects.create() would have sent for each bulk-inserted row (live.notify listens)."""
    for row in rows:
        post_save.send(
            sender=Enrollment, instance=row, created=True, update_fields=None, raw=False, using=row._state.db
        )


def remove_student(klass: Class, student_id: str) -> Class:
    """Unenrol a student; their records stay (reports still show them). NotFound "Student not found" when they
    are not enrolled. The delete's post_delete signal tells their open sockets (live.notify)."""
    removed = 0
    if is_object_id(student_id):
        removed, _ = Enrollment.objects.filter(klass_id=klass.id, student_id=student_id).delete()
    if not removed:
        raise NotFound(messages.STUDENT_NOT_FOUND)
    return klass


def class_detail(class_id: str, user: User) -> ClassDetail:
    """The class with its students populated, for its teacher or an enrolled student."""
    klass = get_class(class_id)
    members = _members(klass.id)
    if klass.teacher_id != user.id and not any(pk == user.id for pk, _, _ in members):
        raise Forbidden(messages.NOT_CLASS_TEACHER)
    # Each student's Member is validated once and remembered (accounts.services.RememberedMembers): a class of
    # 1,000 opens at the start of every lesson, each of its students loading it.
    return ClassDetail.model_validate(
        {
            "id": klass.id,
            "className": klass.class_name,
            "teacherId": klass.teacher_id,
            "students": remembered_members(members),
            "minRate": klass.min_rate,
            "maxConsecutiveAbsences": klass.max_consecutive_absences,
        }
    )


def classes_of(user: User) -> list[ClassListItem]:
    """The caller's classes: a teacher's own, newest first; a student's, latest enrolment first.

    Ids are ObjectIds, which begin with their creation time: ordering by id is ordering by creation. One query
    on SQL, the classes with their sizes; two on MongoDB (whose backend runs no correlated subquery): the
    classes, then their sizes counted by the database. Either way, whatever the numbers of classes and students."""
    teacher = user.role == Role.TEACHER
    if connections[router.db_for_read(Enrollment)].vendor != "mongodb":
        rows: list[tuple[str, str, str, int]] = (_taught_sized if teacher else _enrolled_in_sized)(user.id)
    else:
        listed = (_taught if teacher else _enrolled_in)(user.id)
        sizes = class_sizes([class_id for class_id, _, _ in listed]) if listed else {}
        rows = [(class_id, name, teacher_id, sizes.get(class_id, 0)) for class_id, name, teacher_id in listed]
    return [
        ClassListItem(id=class_id, className=name, teacherId=teacher_id, studentCount=size)
        for class_id, name, teacher_id, size in rows
    ]

def class_sizes(class_ids: list[str]) -> dict[str, int]:
    """Enrolled students per class, counted by the database (one query; classes without any are left out)."""
    return dict(_sizes(class_ids))

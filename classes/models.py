from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from accounts.models import User
from common.fields import ObjectIdField

DEFAULT_MIN_RATE = 0.8
DEFAULT_MAX_CONSECUTIVE_ABSENCES = 3


class Class(models.Model):
    """A teacher's class. Its students are the spec's `studentIds`, kept as Enrollment rows."""

    id = ObjectIdField(primary_key=True)
    class_name = models.CharField(max_length=200)
    teacher = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="taught_classes")
    students: models.ManyToManyField[User, Enrollment] = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Enrollment", related_name="enrolled_classes", blank=True
    )
    # When a student is "at risk" (docs/api.md "Reports and roster"): a rate below min_rate, or this many
    # unexcused absences in a row.
    min_rate = models.FloatField(default=DEFAULT_MIN_RATE, validators=[MinValueValidator(0), MaxValueValidator(1)])
    max_consecutive_absences = models.PositiveSmallIntegerField(
        default=DEFAULT_MAX_CONSECUTIVE_ABSENCES, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )

    class Meta:
        db_table = "classes"
        verbose_name_plural = "classes"
        ordering = ["id"]

    def __str__(self) -> str:
        return self.class_name


class Enrollment(models.Model):
    """One student in one class. An explicit table (not an auto-created one) so that its key is an
    ObjectId like every other document's, and one set of migrations fits SQL and MongoDB."""

    id = ObjectIdField(primary_key=True)
    klass = models.ForeignKey(Class, on_delete=models.CASCADE, related_name="enrollments", db_column="classId")
    student = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="enrollments", db_column="studentId"
    )

    class Meta:
        db_table = "enrollments"
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["klass", "student"], name="unique_enrollment")]

    def __str__(self) -> str:
        return f"{self.student_id} in {self.klass_id}"

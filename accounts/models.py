from __future__ import annotations

from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models

from common.fields import ObjectIdField


class Role(models.TextChoices):
    TEACHER = "teacher"
    STUDENT = "student"


class UserManager(BaseUserManager["User"]):
    def create_user(self, email: str, password: str | None, **fields: Any) -> User:
        user = self.model(email=self.normalize_email(email).strip().lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None, **fields: Any) -> User:
        fields.setdefault("role", Role.TEACHER)
        fields.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **fields)


class User(AbstractBaseUser):
    """A teacher or a student. Admin access is the `is_staff`/`is_superuser` flags alone.

    No PermissionsMixin: its group/permission tables would add auto-numbered join tables that do not
    fit ObjectId keys on MongoDB, and the API has no per-object permissions.
    """

    id = ObjectIdField(primary_key=True)
    name = models.CharField(max_length=200)
    email = models.EmailField(max_length=254, unique=True)
    role = models.CharField(max_length=7, choices=Role.choices, db_index=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    is_superuser = models.BooleanField(default=False)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["name"]

    class Meta:
        ordering = ["id"]

    # The role as last read from or written to the database (None: not known, e.g. a deferred field), so that
    # a save can tell a role change: open sockets follow their account's role (live.notify).
    _stored_role: str | None = None

    @classmethod
    def from_db(cls, db: str | None, field_names: Any, values: Any) -> User:
        user = super().from_db(db, field_names, values)
        user._stored_role = user.__dict__.get("role")
        return user

    def save(self, *args: Any, **kwargs: Any) -> None:
        super().save(*args, **kwargs)  # post_save (live.notify) still sees the role the database had before
        update_fields = kwargs.get("update_fields")
        if update_fields is None or "role" in update_fields:
            self._stored_role = self.role

    @property
    def role_changed(self) -> bool:
        """Does this save change a role the database had (as far as this instance knows)?"""
        return self._stored_role is not None and self._stored_role != self.role

    def __str__(self) -> str:
        return f"{self.name} <{self.email}> ({self.role})"

    def has_perm(self, perm: str, obj: object = None) -> bool:
        return self.is_active and self.is_superuser

    def has_module_perms(self, app_label: str) -> bool:
        return self.is_active and self.is_superuser

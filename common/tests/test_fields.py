"""ObjectIdField and the id helpers (docs/api.md: ids)."""

from types import SimpleNamespace

import pytest
from bson import ObjectId
from django.db import connection

from accounts.models import User
from classes.models import Class, Enrollment
from common.fields import ObjectIdField, is_object_id, new_object_id

OBJECT_ID_CHARS = set("0123456789abcdef")
MONGODB = SimpleNamespace(vendor="mongodb")
SQL = SimpleNamespace(vendor="sqlite")  # the field asks a connection only for its vendor, except in db_type


def test_new_object_id_is_24_lowercase_hex_and_unique():
    ids = [new_object_id() for _ in range(1000)]
    assert all(len(value) == 24 and set(value) <= OBJECT_ID_CHARS for value in ids)
    assert len(set(ids)) == len(ids)
    assert all(is_object_id(value) for value in ids)


@pytest.mark.parametrize("value", ["5f0c0ffee0ddba11deadbeef", "000000000000000000000000", str(ObjectId())])
def test_is_object_id_accepts_lowercase_hex(value):
    assert is_object_id(value) is True


@pytest.mark.parametrize(
    "value",
    [
        "5F0C0FFEE0DDBA11DEADBEEF",  # upper case: not the form ids take
        "5f0c0ffee0ddba11deadbee",  # 23
        "5f0c0ffee0ddba11deadbeefa",  # 25
        "zzzzzzzzzzzzzzzzzzzzzzzz",
        " 5f0c0ffee0ddba11deadbee",
        "",
        "abcdefghijkl",  # 12 chars: bson would take 12 *bytes*
        b"abcdefghijkl",
        ObjectId(),
        None,
        5,
        ["5f0c0ffee0ddba11deadbeef"],
    ],
)
def test_is_object_id_rejects_other_values(value):
    assert is_object_id(value) is False


@pytest.mark.parametrize("model", [User, Class, Enrollment])
def test_primary_keys_are_object_id_fields_in_column_underscore_id(model):
    pk = model._meta.pk
    assert isinstance(pk, ObjectIdField)
    assert (pk.name, pk.column, pk.max_length, pk.editable) == ("id", "_id", 24, False)
    assert is_object_id(pk.get_default())
    assert pk.get_default() != pk.get_default()


def test_non_primary_key_field_has_no_default_or_column_override():
    field = ObjectIdField()
    assert (field.max_length, field.has_default(), field.db_column, field.editable) == (24, False, None, True)


def test_deconstruct_leaves_max_length_out():
    name, path, args, kwargs = ObjectIdField(primary_key=True).deconstruct()
    assert path == "common.fields.ObjectIdField"
    assert "max_length" not in kwargs
    assert kwargs["primary_key"] is True and kwargs["db_column"] == "_id"
    assert ObjectIdField(*args, **kwargs).max_length == 24


def test_db_type_is_native_object_id_on_mongodb_and_char_24_on_sql():
    field = ObjectIdField(primary_key=True)
    assert field.db_type(MONGODB) == "objectId"
    assert field.rel_db_type(MONGODB) == "objectId"
    # The run's own backend: the storage really differs here.
    if connection.vendor == "mongodb":
        assert field.db_type(connection) == "objectId"
    else:
        assert "24" in field.db_type(connection)
    assert field.rel_db_type(connection) == field.db_type(connection)


def test_from_db_value_gives_str():
    field = ObjectIdField()
    oid = ObjectId()
    assert field.from_db_value(oid, None, MONGODB) == str(oid)
    assert field.from_db_value(str(oid), None, SQL) == str(oid)
    assert field.from_db_value(None, None, SQL) is None


def test_only_mongodb_values_go_through_from_db_value():
    """A SQL column already reads as the hex string: no call per value (reports read thousands of ids)."""
    field = ObjectIdField()
    assert field.from_db_value not in field.get_db_converters(SQL)
    assert field.from_db_value in field.get_db_converters(MONGODB)


@pytest.mark.django_db
def test_ids_read_back_as_str_on_every_backend():
    user = User.objects.create_user(email="rows@example.com", password="secret123", name="Rows", role="teacher")
    klass = Class.objects.create(class_name="Rows", teacher=user)
    [(pk, teacher_id)] = Class.objects.filter(pk=klass.pk).values_list("id", "teacher_id")
    assert (pk, teacher_id) == (klass.pk, user.pk)
    assert type(pk) is str and type(teacher_id) is str


def test_to_python_gives_str():
    field = ObjectIdField()
    oid = ObjectId()
    assert field.to_python(oid) == str(oid) and isinstance(field.to_python(oid), str)
    assert field.to_python("5f0c0ffee0ddba11deadbeef") == "5f0c0ffee0ddba11deadbeef"
    assert field.to_python(None) is None


def test_get_db_prep_value_is_object_id_on_mongodb_only():
    field = ObjectIdField()
    value = "5f0c0ffee0ddba11deadbeef"
    assert field.get_db_prep_value(value, MONGODB) == ObjectId(value)
    assert field.get_db_prep_value(value, SQL) == value
    assert field.get_db_prep_value(value, connection) == (ObjectId(value) if connection.vendor == "mongodb" else value)
    assert field.get_db_prep_value(None, MONGODB) is None
    # Not an ObjectId: left a string that can match nothing, no error.
    assert field.get_db_prep_value("not-an-id", MONGODB) == "not-an-id"


@pytest.mark.django_db
def test_saved_rows_get_object_id_keys_and_round_trip():
    user = User.objects.create_user(email="ids@example.com", password="secret123", name="Ids", role="teacher")
    klass = Class.objects.create(class_name="Ids", teacher=user)
    assert is_object_id(user.pk) and is_object_id(klass.pk) and user.pk != klass.pk
    fetched = Class.objects.select_related("teacher").get(pk=klass.pk)
    assert (fetched.pk, fetched.teacher_id, fetched.teacher.pk) == (klass.pk, user.pk, user.pk)
    assert isinstance(fetched.pk, str)


@pytest.mark.django_db
def test_the_stored_key_is_underscore_id_holding_the_native_form():
    """SQL: a column `_id` holding the hex string; MongoDB: the document's own `_id`, a native ObjectId."""
    user = User.objects.create_user(email="col@example.com", password="secret123", name="Col", role="teacher")
    klass = Class.objects.create(class_name="Col", teacher=user)
    if connection.vendor == "mongodb":
        documents = list(connection.get_database()["classes"].find({}, {"_id": 1, "teacher_id": 1}))
        assert documents == [{"_id": ObjectId(klass.pk), "teacher_id": ObjectId(user.pk)}]
    else:
        with connection.cursor() as cursor:
            cursor.execute('SELECT "_id", "teacher_id" FROM "classes"')
            assert cursor.fetchall() == [(klass.pk, user.pk)]

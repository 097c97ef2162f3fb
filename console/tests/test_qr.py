"""GET /qr: the QR code the projector view draws (console/qr.py), decoded back here with zxing-cpp."""

from __future__ import annotations

import re

import pytest
import zxingcpp
from PIL import Image, ImageDraw

from tests.support import INVALID_SCHEMA, TEACHER_REQUIRED, UNAUTHORIZED, assert_error, assert_ok, auth

pytestmark = pytest.mark.django_db

LINK = "http://127.0.0.1:3000/?checkin=482913&classId=5f0c0ffee0ddba11deadbeef"
RUN = re.compile(r"M(\d+) (\d+)h(\d+)v1h-(\d+)z")


def draw(size: int, path: str, scale: int = 6) -> Image.Image:
    """The path as the console draws it: black runs of modules on white."""
    image = Image.new("L", (size * scale, size * scale), 255)
    pen = ImageDraw.Draw(image)
    runs = RUN.findall(path)
    assert "".join(f"M{x} {y}h{w}v1h-{w2}z" for x, y, w, w2 in runs) == path  # nothing but runs
    for x, y, w, w2 in runs:
        assert w == w2
        left, top = int(x) * scale, int(y) * scale
        pen.rectangle((left, top, left + int(w) * scale - 1, top + scale - 1), fill=0)
    return image


def test_a_teacher_gets_a_code_that_decodes_to_the_text(client, teacher):
    data = assert_ok(client.get("/qr", {"text": LINK}, headers=auth(teacher)))
    assert data["text"] == LINK
    assert set(data) == {"text", "size", "path"}
    # The quiet zone: four light modules on every side.
    runs = [tuple(map(int, run)) for run in RUN.findall(data["path"])]
    assert min(x for x, *_ in runs) == 4 and min(y for _, y, *_ in runs) == 4
    assert max(x + w for x, _, w, _ in runs) == data["size"] - 4
    assert max(y for _, y, *_ in runs) == data["size"] - 5
    decoded = zxingcpp.read_barcodes(draw(data["size"], data["path"]))
    assert [(code.text, code.format) for code in decoded] == [(LINK, zxingcpp.BarcodeFormat.QRCode)]


def test_other_text_gives_another_code(client, teacher):
    first = assert_ok(client.get("/qr", {"text": LINK}, headers=auth(teacher)))
    second = assert_ok(client.get("/qr", {"text": LINK.replace("482913", "482914")}, headers=auth(teacher)))
    assert first["path"] != second["path"]
    assert zxingcpp.read_barcodes(draw(second["size"], second["path"]))[0].text.endswith("checkin=482914&classId="
                                                                                         "5f0c0ffee0ddba11deadbeef")


def test_who_and_what(client, teacher, student):
    assert_error(client.get("/qr", {"text": LINK}), 401, UNAUTHORIZED)
    assert_error(client.get("/qr", {"text": LINK}, headers=auth(student)), 403, TEACHER_REQUIRED)
    assert_error(client.get("/qr", headers=auth(teacher)), 400, INVALID_SCHEMA)
    assert_error(client.get("/qr", {"text": ""}, headers=auth(teacher)), 400, INVALID_SCHEMA)
    assert_error(client.get("/qr", {"text": "x" * 513}, headers=auth(teacher)), 400, INVALID_SCHEMA)
    assert assert_ok(client.get("/qr", {"text": "x" * 512}, headers=auth(teacher)))["size"] > 0

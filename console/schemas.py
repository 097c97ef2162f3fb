"""The console's own route: a QR code for the projector view (console/qr.py)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from common.schemas import ResponseModel

QR_TEXT_MAX = 512


class QrQuery(BaseModel):
    """GET /qr: what the code holds (the console asks for the check-in link of CHECKIN_CODE `url`)."""

    model_config = ConfigDict(extra="ignore")
    text: Annotated[str, StringConstraints(min_length=1, max_length=QR_TEXT_MAX)] = Field(
        description="The text to encode, 1–512 characters", examples=["http://localhost:3000/?checkin=482913"]
    )


class QrCode(ResponseModel):
    """`text` as a QR code (level M or better), for drawing as `<svg viewBox="0 0 size size">`: white
    background, `path` filled black."""

    text: str
    size: int = Field(description="The side in modules, a quiet zone of 4 on each side included")
    path: str = Field(
        description="SVG path data of the dark modules in module units (one rectangle per run of a row)",
        examples=["M4 4h7v1h-7z"],
    )

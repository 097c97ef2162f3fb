"""The live WebSocket: parse, check, call live.services, reply. No business rules here."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import orjson
from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from pydantic import BaseModel, ValidationError

from accounts.models import Role, User
from attendance_site.api import INTERNAL_ERROR, ApiError
from live import services
from live.db import db_call
from live.hub import get_hub, publish
from live.notify import class_group, user_group
from live.schemas import AttendanceMarkedData, DoneData, Frame, MyAttendanceData, TodaySummaryData

logger = logging.getLogger(__name__)

UNAUTHORIZED = "Unauthorized or invalid token"
INVALID_FORMAT = "Invalid message format"
UNKNOWN_EVENT = "Unknown event"
TEACHER_ONLY = "Forbidden, teacher event only"
STUDENT_ONLY = "Forbidden, student event only"

CLOSE_POLICY_VIOLATION = 1008
CLOSE_MESSAGE_TOO_BIG = 1009


def encode(event: str, data: dict[str, Any]) -> str:
    return orjson.dumps({"event": event, "data": data}).decode()


class InvalidFormat(Exception):
    pass


def parse_data(schema: type[BaseModel], data: Any) -> Any:
    """Validate an event's `data`; events without a payload accept it missing or null."""
    try:
        return schema.model_validate({} if data is None else data)
    except ValidationError:
        raise InvalidFormat from None


class AttendanceConsumer(AsyncWebsocketConsumer):
    # No channel-layer channel per socket: group messages arrive through the process hub (live.hub).
    channel_layer_alias = None
    user: User | None = None

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch without its per-message hop to close stale database connections:
        database calls here keep and check their own connection (live.db)."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        token = (query.get("token") or [None])[0]
        participant = await db_call(services.connect_participant)(token)
        await self.accept()
        if participant is None:
            await self.send_event("ERROR", {"message": UNAUTHORIZED})
            await self.close(code=CLOSE_POLICY_VIOLATION)
            return
        self.hub_groups: list[str] = []
        self.member_id = secrets.token_hex(8)
        self.user, self.class_ids = participant
        for group in [user_group(self.user.id), *(class_group(c) for c in self.class_ids)]:
            await self.join(group)

    async def join(self, group: str) -> None:
        self.hub_groups.append(group)
        await get_hub().join(group, self)

    async def disconnect(self, code: int) -> None:
        if self.user is not None:
            await get_hub().leave(self.hub_groups, self)

    # --- client frames -----------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.user is None:
            return
        if text_data is None:
            await self.send_error(INVALID_FORMAT)  # binary frames carry no events
            return
        limit = settings.WS_MAX_MESSAGE_BYTES
        if len(text_data) > limit // 4 and len(text_data.encode()) > limit:
            # Daphne refuses such frames first; this guards other servers (e.g. runserver).
            await self.close(code=CLOSE_MESSAGE_TOO_BIG)
            return
        try:
            frame = Frame.model_validate(orjson.loads(text_data))
        except (orjson.JSONDecodeError, ValidationError):
            await self.send_error(INVALID_FORMAT)
            return
        route = self.routes.get(frame.event)
        if route is None:
            await self.send_error(UNKNOWN_EVENT)
            return
        role, handler = route
        if self.user.role != role:
            await self.send_error(TEACHER_ONLY if role == Role.TEACHER else STUDENT_ONLY)
            return
        try:
            await handler(self, frame.data)
        except InvalidFormat:
            await self.send_error(INVALID_FORMAT)
        except ApiError as error:
            await self.send_error(error.message)
        except Exception:
            # Like the HTTP side: details only in the log, and the socket stays usable.
            logger.exception("Unhandled error in %s", frame.event)
            await self.send_error(INTERNAL_ERROR)

    async def on_attendance_marked(self, data: Any) -> None:
        session = await services.active_session(self.user.id)
        payload = parse_data(AttendanceMarkedData, data)
        await db_call(services.check_enrolled)(session, payload.studentId)
        session = await services.mark_attendance(session, payload.studentId, payload.status)
        await self.broadcast(
            session.class_id, "ATTENDANCE_MARKED", {"studentId": payload.studentId, "status": payload.status}
        )

    async def on_today_summary(self, data: Any) -> None:
        session = await services.active_session(self.user.id)
        parse_data(TodaySummaryData, data)
        await self.broadcast(session.class_id, "TODAY_SUMMARY", session.counts())

    async def on_my_attendance(self, data: Any) -> None:
        sessions = await services.student_sessions(self.class_ids)
        if not sessions:
            raise ApiError(404, services.NO_SESSION)
        payload = parse_data(MyAttendanceData, data)
        status = services.my_live_status(sessions, self.user.id, payload.classId)
        await self.send_event("MY_ATTENDANCE", {"status": status})

    async def on_done(self, data: Any) -> None:
        await services.active_session(self.user.id)
        parse_data(DoneData, data)
        session, summary = await services.finish_session(self.user.id)
        await self.broadcast(session.class_id, "DONE", {"message": "Attendance persisted", **summary})

    routes: dict[str, tuple[str, Callable[[AttendanceConsumer, Any], Awaitable[None]]]] = {
        "ATTENDANCE_MARKED": (Role.TEACHER, on_attendance_marked),
        "TODAY_SUMMARY": (Role.TEACHER, on_today_summary),
        "MY_ATTENDANCE": (Role.STUDENT, on_my_attendance),
        "DONE": (Role.TEACHER, on_done),
    }

    # --- server messages ------------------------------------------------------------------------

    async def send_event(self, event: str, data: dict[str, Any]) -> None:
        await self.send(text_data=encode(event, data))

    async def send_error(self, message: str) -> None:
        await self.send_event("ERROR", {"message": message})

    async def broadcast(self, class_id: str, event: str, data: dict[str, Any]) -> None:
        """Serialise once; this socket first, then every other participant of the class."""
        text = encode(event, data)
        await self.send(text_data=text)
        await publish(class_group(class_id), {"kind": "broadcast", "text": text, "skip": self.member_id})

    # --- group messages (from live.hub) -------------------------------------------------------------

    async def on_group_message(self, message: dict[str, Any]) -> None:
        if message["kind"] == "broadcast":
            if message["skip"] != self.member_id:
                await self.send(text_data=message["text"])
        elif message["kind"] == "join" and message["class_id"] not in self.class_ids:
            # Created a class or was enrolled since connecting: receive its broadcasts from now on.
            self.class_ids.add(message["class_id"])
            await self.join(class_group(message["class_id"]))

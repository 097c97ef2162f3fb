"""The live WebSocket: parse, check, call live.commands / live.selectors, reply. No business rules here.

Every client event is one row of EVENTS (who may send it, the session it acts on, its payload schema, its
handler), and one pipeline runs the contract's check order for all of them: role → session → payload →
the handler. Domain errors become ERROR events here and nowhere else.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

import orjson
from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import DatabaseError
from pydantic import ValidationError

from accounts.models import Role, User
from accounts.tokens import verify_token
from common import messages
from common.errors import DomainError, Forbidden, Invalid, NotFound, NotNow, TooManyRequests, Unavailable
from common.fields import is_object_id
from common.limits import MessageRate, open_sockets, open_sockets_per_ip, scope_client_ip
from common.schemas import RequestBody, ResponseModel, iso_z
from live import commands, publisher, selectors, upkeep
from live.checkin import checkin_url
from live.db import db_call, loop_read
from live.hub import get_hub
from live.notify import class_group, user_group
from live.participants import lookup_participant
from live.schemas import (
    AttendanceMarkedData,
    CheckInCodePayload,
    CheckInData,
    CheckInOpenData,
    ClearedData,
    ErrorPayload,
    Frame,
    MarkAllData,
    MyAttendanceData,
    MyStatusPayload,
    NoData,
    SummaryPayload,
    encode,
)
from live.selectors import Session
from server.daphne_ext import SOCKET_EXTENSION, DirectSocket

logger = logging.getLogger(__name__)

CLOSE_POLICY_VIOLATION = 1008
CLOSE_MESSAGE_TOO_BIG = 1009


# --- the event table ------------------------------------------------------------------------------------


async def teacher_session(consumer: AttendanceConsumer) -> Session:
    """The teacher's live session, read from the database (its only copy)."""
    return await loop_read(selectors.active_session)(consumer.user.id)


async def teacher_session_unread(consumer: AttendanceConsumer) -> Session:
    """The teacher's live session without its marks (ATTENDANCE_MARKED and DONE do not read them)."""
    return await loop_read(selectors.active_session)(consumer.user.id, False)


async def session_to_finish(consumer: AttendanceConsumer) -> Session:
    """DONE's session. A database that fails this read fails the DONE as a failed write would: nothing was
    persisted and the session is kept, so the teacher is told to try again (not an internal error)."""
    try:
        return await teacher_session_unread(consumer)
    except DatabaseError:
        logger.warning("Reading the session to finish failed", exc_info=True)
        raise Unavailable(messages.PERSIST_FAILED) from None


async def student_sessions(consumer: AttendanceConsumer) -> list[Session]:
    """The live sessions of the student's classes, most recent first (at least one)."""
    sessions = await loop_read(selectors.student_sessions)(list(consumer.class_ids)) if consumer.class_ids else []
    if not sessions:
        raise NotFound(messages.NO_SESSION)
    return sessions


Handler = Callable[["AttendanceConsumer", Any, Any], Awaitable[None]]


@dataclass(frozen=True)
class SocketEvent:
    """One client event: who may send it, how to find the session it acts on, its payload, its handler;
    `errors` are those its handler itself raises (the API documents list them)."""

    role: Role
    session: Callable[[AttendanceConsumer], Awaitable[Any]]
    schema: type[RequestBody]
    handler: Handler
    description: str = ""
    errors: tuple[DomainError, ...] = ()
    # The server events that answer it (the API documents); none given: the event of the same name, if any.
    replies: tuple[str, ...] = ()

    def all_errors(self) -> list[DomainError]:
        """Every ERROR this event can get, in check order: role → session → payload → the handler's."""
        checks = [Forbidden(ROLE_ONLY[self.role]), NotFound(messages.NO_SESSION), Invalid(messages.INVALID_FORMAT)]
        return list(dict.fromkeys(checks + list(self.errors)))


ROLE_ONLY = {Role.TEACHER: messages.TEACHER_EVENT_ONLY, Role.STUDENT: messages.STUDENT_EVENT_ONLY}
# ERRORs that are not about one event: at connect (then close 1008), and for any frame.
CONNECT_ERRORS = (messages.WS_UNAUTHORIZED, messages.TOO_MANY_CONNECTIONS)
FRAME_ERRORS = (messages.INVALID_FORMAT, messages.UNKNOWN_EVENT, messages.TOO_MANY_MESSAGES, messages.INTERNAL_ERROR)


def parse_data(schema: type[RequestBody], data: Any) -> Any:
    """Validate an event's `data`; events without a payload accept it missing or null."""
    try:
        return schema.model_validate({} if data is None else data)
    except ValidationError:
        raise Invalid(messages.INVALID_FORMAT) from None


# In place of frames refused by the message rate, at most once a second: the consumer answers it with ERROR.
RATE_LIMITED = "rate_limited"


class MeteredReceive:
    """A socket's ASGI `receive`, whose frames are counted against the socket's message rate as they arrive.

    A consumer serves one frame at a time. Counted only as they are served, the frames of a flood sent at once
    would be taken at the pace of the service: when each frame waits on the database (tens of milliseconds on
    a slow one) the bucket refills as fast as frames are taken, nothing is refused and the flood just queues.
    So each time the consumer asks for its next message, the frames already waiting in the server's queue are
    taken and counted first; those over the limit are dropped (one RATE_LIMITED message in their place at most
    once a second), the others are marked counted. A frame that finds the consumer idle arrived just now: it
    is counted when served (`AttendanceConsumer.websocket_receive`), without a wrapper coroutine per socket.
    A server whose queue cannot be read without waiting (no `get_nowait`) has every frame counted when served."""

    __slots__ = ("receive", "rate", "take_waiting", "ready")

    def __init__(self, receive: Callable[[], Awaitable[dict[str, Any]]], rate: MessageRate) -> None:
        self.receive = receive
        self.rate = rate
        # Daphne and Channels' test communicator both pass the bound `get` of their input queue.
        self.take_waiting: Callable[[], dict[str, Any]] | None = getattr(
            getattr(receive, "__self__", None), "get_nowait", None
        )
        self.ready: deque[dict[str, Any]] | None = None  # taken from the queue and counted, not yet served

    def __call__(self) -> Awaitable[dict[str, Any]]:
        if self.take_waiting is not None:
            self.count_waiting(self.take_waiting)
        if self.ready:
            message = self.ready.popleft()
            taken: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            taken.set_result(message)
            return taken
        return self.receive()

    def count_waiting(self, take: Callable[[], dict[str, Any]]) -> None:
        while True:
            try:
                message = take()
            except asyncio.QueueEmpty:
                return
            if message.get("type") == "websocket.receive":
                if self.rate.allow():
                    message["counted"] = True
                elif self.rate.warn():
                    message = {"type": "websocket.receive", RATE_LIMITED: True}
                else:
                    continue
            if self.ready is None:
                self.ready = deque()
            self.ready.append(message)


# A socket's id, unique among every process's sockets (broadcasts name the one to skip across processes): this
# process's random tag and a count, instead of a system call for random bytes at every connect. A process forked
# from this one draws a tag of its own.
_process_tag = secrets.token_hex(6)
_member_numbers = itertools.count()


def _new_process_tag() -> None:
    global _process_tag, _member_numbers
    _process_tag, _member_numbers = secrets.token_hex(6), itertools.count()


os.register_at_fork(after_in_child=_new_process_tag)


def next_member_id() -> str:
    return f"{_process_tag}-{next(_member_numbers)}"


class AttendanceConsumer(AsyncWebsocketConsumer):
    # No channel-layer channel per socket: group messages arrive through the process hub (live.hub).
    channel_layer_alias = None

    user: User
    class_ids: set[str]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.member_id = next_member_id()
        self.authenticated = False
        self.accepted = False
        self.closed = False
        self.hub_groups: list[str] = []
        self.held: list[str] = []  # broadcasts that arrived before accept(), sent right after it
        self.early_notices: list[dict[str, Any]] | None = []  # membership notices before the classes were read
        self.expiry: asyncio.TimerHandle | None = None
        self.pending: set[asyncio.Task[None]] = set()  # the expiry's revoke, kept referenced while it runs
        self.message_rate = MessageRate.from_settings()  # docs/production.md limits: WS_RATE_BURST, WS_RATE_PER_SECOND
        self.direct: DirectSocket | None = None  # under our Daphne: broadcasts written outside ASGI
        # `direct` once accepted with nothing held, until closed: the native fan-out writes to it (live.hub)
        self.direct_ready: DirectSocket | None = None
        self.checkin_codes: asyncio.Task[None] | None = None  # a teacher's: sends CHECKIN_CODE while a window is open
        self.code_sent: tuple[str, int] | None = None  # (window secret, rotation) of the last CHECKIN_CODE

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.direct = scope.get("extensions", {}).get(SOCKET_EXTENSION)
        if self.message_rate.bucket is not None:
            receive = MeteredReceive(receive, self.message_rate)
        try:
            await self.serve(scope, receive, send)
        finally:
            # Every exit path, a consumer cancelled mid-event included: no membership outlives the socket.
            self.forget()

    async def serve(self, scope: Any, receive: Callable[[], Awaitable[dict[str, Any]]], send: Any) -> None:
        """Channels' AsyncConsumer.__call__ (4.3, pinned) for a consumer without a channel layer: the same
        attributes, and each message dispatched once received, one at a time. Channels' own looks the layer up in
        the settings at every connect (a KeyError for no alias) and receives each message in a task of its own
        (await_many_dispatch, here over one source): together ~8 % of a connect's CPU (docs/benchmark.md)."""
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        try:
            while True:
                await self.dispatch(await receive())
                # As fair as Channels' task per message: a socket whose frames are already waiting and handled
                # without a pause still lets the other sockets (and broadcasts) go between two of them.
                await asyncio.sleep(0)
        except StopConsumer:
            pass

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch without its per-message hop to close stale database connections:
        database calls here keep and check their own connection (live.db)."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        """Channels' websocket_disconnect without that hop either (a thread hop per closing socket); this
        consumer is in no channel-layer group to leave."""
        await self.disconnect(message["code"])
        raise StopConsumer()

    # --- connection -------------------------------------------------------------------------------

    async def connect(self) -> None:
        """Join the user's and the classes' groups before completing the handshake, so that a broadcast
        sent after the client saw `open` reaches it; the user group first, so that an enrolment made
        while the classes are being read is not missed either."""
        address = scope_client_ip(self.scope)
        if address is not None and not open_sockets_per_ip.acquire(address, self.member_id):
            await self.refuse(messages.TOO_MANY_CONNECTIONS)  # WS_MAX_SOCKETS_PER_IP, in this process
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        token = (query.get("token") or [None])[0]
        claims = verify_token(token) if token else None
        if claims is not None and is_object_id(claims["userId"]):
            await self.join(user_group(claims["userId"]))
            participant = await lookup_participant(claims)
        else:
            participant = None
        if participant is not None and not open_sockets.acquire(participant[0].id, self.member_id):
            await self.refuse(messages.TOO_MANY_CONNECTIONS)  # WS_MAX_SOCKETS_PER_USER, in this process
            return
        if participant is not None:
            self.user, self.class_ids = participant
            for class_id in list(self.class_ids):
                await self.join(class_group(class_id))
            # Notices that arrived while the classes were being read (they may not be in what was read).
            early, self.early_notices = self.early_notices, None
            for notice in early or []:
                await self.on_notice(notice)
        if participant is None or self.closed:
            await self.refuse(messages.WS_UNAUTHORIZED)
            return
        self.authenticated = True
        await self.accept()
        self.accepted = True
        self.close_when_token_expires(claims["exp"])  # type: ignore[index]
        upkeep.ensure_running()
        for text in self.held:
            await self.send(text_data=text)
        self.held.clear()
        if not self.closed:
            self.direct_ready = self.direct
        # A window open already (a reload of the projector): its code at once. Read here, before this socket's
        # next frame is handled, and not by the timer task alone: a window this socket opens next must have its
        # CHECKIN_OPENED sent before its first CHECKIN_CODE (the notice of its opening starts the timer then).
        if self.user.role == Role.TEACHER and await self.window_open_at_connect():
            self.follow_checkin()

    async def refuse(self, message: str) -> None:
        """Accept only to say why, then close 1008 (docs/api.md: the auth ERROR, too many connections)."""
        self.forget()
        await self.accept()
        await self.send_event("ERROR", ErrorPayload(message=message))
        await self.close(code=CLOSE_POLICY_VIOLATION)

    async def join(self, group: str) -> None:
        if self.closed or group in self.hub_groups:
            return
        self.hub_groups.append(group)
        await get_hub().join(group, self)
        if self.closed:  # the socket closed while joining: undo what this join added
            self.forget()

    def close_when_token_expires(self, expires_at: float) -> None:
        """The token stops being valid at `exp`: so does the socket (as /auth/me answers 401 from then on)."""
        loop = asyncio.get_running_loop()
        delay = max(0.0, expires_at - time.time())
        self.expiry = loop.call_later(delay, lambda: self.pending.add(loop.create_task(self.revoke())))

    def forget(self) -> None:
        """Leave every group, now (synchronous: safe on any exit path)."""
        self.closed = True
        self.direct_ready = None
        open_sockets.release(self.member_id)
        open_sockets_per_ip.release(self.member_id)
        if self.expiry is not None:
            self.expiry.cancel()
            self.expiry = None
        if self.checkin_codes is not None:
            self.checkin_codes.cancel()
            self.checkin_codes = None
        if self.hub_groups:
            get_hub().leave(self.hub_groups, self)
            self.hub_groups = []

    async def disconnect(self, code: int) -> None:
        self.forget()

    # --- client frames ---------------------------------------------------------------------------------

    async def websocket_receive(self, message: dict[str, Any]) -> None:
        """The message rate (docs/production.md limits): a frame over it is not processed, the socket stays
        open. Most frames were counted on arrival (MeteredReceive); one that found the socket idle is counted
        now."""
        if not self.authenticated or self.closed:
            return  # refused, or closed by us (frames already in flight are not served)
        if message.get(RATE_LIMITED) or not (message.get("counted") or self.message_rate.allow()):
            if message.get(RATE_LIMITED) or self.message_rate.warn():
                await self.send_error(messages.TOO_MANY_MESSAGES)
            return
        await super().websocket_receive(message)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None:
            await self.send_error(messages.INVALID_FORMAT)  # binary frames carry no events
            return
        limit = settings.WS_MAX_MESSAGE_BYTES
        if len(text_data) > limit // 4 and len(text_data.encode()) > limit:
            # Daphne refuses such frames first; this guards other servers (e.g. runserver).
            self.forget()
            await self.close(code=CLOSE_MESSAGE_TOO_BIG)
            return
        try:
            frame = Frame.model_validate(orjson.loads(text_data))
        except (orjson.JSONDecodeError, ValidationError):
            await self.send_error(messages.INVALID_FORMAT)
            return
        event = EVENTS.get(frame.event)
        if event is None:
            await self.send_error(messages.UNKNOWN_EVENT)
            return
        if self.user.role != event.role:
            await self.send_error(ROLE_ONLY[event.role])
            return
        try:
            session = await event.session(self)
            payload = parse_data(event.schema, frame.data)
            await event.handler(self, session, payload)
        except DomainError as error:
            await self.send_error(error.message)
        except Exception:
            # Like the HTTP side: details only in the log, and the socket stays usable.
            logger.exception("Unhandled error in %s", frame.event)
            await self.send_error(messages.INTERNAL_ERROR)

    # A change is written, then broadcast by the command once committed (live.publisher: this socket first).
    # Shielded: a socket closing meanwhile must not drop the broadcast of what was committed.

    async def on_attendance_marked(self, session: Session, payload: AttendanceMarkedData) -> None:
        mark = db_call(commands.mark_attendance)(
            session, payload.studentId, payload.status, self.user.id, self, payload.remark
        )
        await asyncio.shield(mark)

    async def on_mark_all(self, session: Session, payload: MarkAllData) -> None:
        await asyncio.shield(db_call(commands.mark_all)(session, payload.status, self.user.id, self))

    async def on_attendance_cleared(self, session: Session, payload: ClearedData) -> None:
        await asyncio.shield(db_call(commands.clear_mark)(session, payload.studentId, self.user.id, self))

    async def on_today_summary(self, session: Session, payload: NoData) -> None:
        counts = await db_call(selectors.today_summary)(session)
        await publisher.broadcast(session.class_id, "TODAY_SUMMARY", SummaryPayload(**counts), origin=self)

    async def on_my_attendance(self, sessions: list[Session], payload: MyAttendanceData) -> None:
        status = selectors.my_live_status(sessions, self.user.id, payload.classId)
        await self.send_event("MY_ATTENDANCE", MyStatusPayload.model_validate({"status": status}))

    async def on_done(self, session: Session, payload: NoData) -> None:
        await asyncio.shield(db_call(commands.finish_session)(session, self))

    async def on_checkin_open(self, session: Session, payload: CheckInOpenData) -> None:
        opened = db_call(commands.open_checkin)(
            session, payload.minutes, payload.rotateSeconds, payload.lateAfterMinutes, self
        )
        await asyncio.shield(opened)

    async def on_checkin_close(self, session: Session, payload: NoData) -> None:
        await asyncio.shield(db_call(commands.close_checkin)(session, self))

    async def on_check_in(self, sessions: list[Session], payload: CheckInData) -> None:
        session = selectors.checkin_session(sessions, payload.classId)
        await asyncio.shield(db_call(commands.check_in)(session, self.user.id, payload.code, self))

    # --- a teacher's check-in codes ------------------------------------------------------------------------

    async def window_open_at_connect(self) -> bool:
        """Whether the teacher's live session has a check-in window; True when the database cannot say (the
        code timer, which retries, then finds out)."""
        try:
            return await db_call(selectors.teacher_window)(self.user.id) is not None
        except Exception:
            logger.warning("Reading the check-in window at connect failed", exc_info=True)
            return True

    def follow_checkin(self) -> None:
        """(Re)start this teacher socket's code timer: at connect, and at every window opened (a notice)."""
        if self.checkin_codes is not None:
            self.checkin_codes.cancel()
        if not self.closed:
            self.checkin_codes = asyncio.get_running_loop().create_task(self.send_checkin_codes())

    async def send_checkin_codes(self) -> None:
        """While the teacher's live session has an open window: its code now and at every rotation, computed from
        the record (read again each time: a window closed or reopened elsewhere is followed). At the window's end
        it is closed here, unless another process (or the upkeep) did first: CHECKIN_CLOSED goes out once."""
        while not self.closed:
            try:
                window = await db_call(selectors.teacher_window)(self.user.id)
                if window is None:
                    return
                now = commands.utc_now()
                if not window.is_open(now):
                    await asyncio.shield(db_call(commands.close_window)(window))
                    return
                rotation = window.rotation(now)
                if self.code_sent != (window.secret, rotation):
                    self.code_sent = (window.secret, rotation)
                    code = window.code(rotation)
                    payload = CheckInCodePayload(
                        code=code,
                        expiresAt=iso_z(window.expires_at(rotation)),
                        url=checkin_url(console_origin(self.scope), window.class_id, code),
                    )
                    await self.send_event("CHECKIN_CODE", payload)
                wake = window.expires_at(rotation)
            except asyncio.CancelledError:
                raise
            except Exception:  # the database failed: try again shortly, the window may still be open
                logger.warning("Following the check-in window failed", exc_info=True)
                await asyncio.sleep(1.0)
                continue
            await self.sleep_until(wake)

    async def sleep_until(self, moment: datetime) -> None:
        """Until just after `moment` (a rotation's end: never before it, or the same code would come again)."""
        await asyncio.sleep(max(0.0, (moment - commands.utc_now()).total_seconds()) + 0.005)

    # --- server messages -------------------------------------------------------------------------------

    async def send_event(self, event: str, data: ResponseModel) -> None:
        await self.send(text_data=encode(event, data))

    async def send_error(self, message: str) -> None:
        await self.send_event("ERROR", ErrorPayload(message=message))

    # --- group messages (from live.hub) --------------------------------------------------------------------

    def deliver_now(self, message: dict[str, Any], shared: dict[str, Any]) -> bool:
        """A broadcast, written now through the DirectSocket with the frame that all local recipients share
        (built by the first of them); False for everything that takes on_group_message: notices, a socket
        not yet accepted or still sending what it held, or a server without the extension."""
        if message["kind"] != "broadcast":
            return False
        if message["skip"] == self.member_id or self.closed:
            return True
        if self.direct is None or not self.accepted or self.held:
            return False
        frame = shared.get("frame")
        if frame is None:
            frame = shared["frame"] = self.direct.prepare(message["text"])
        return self.direct.send_prepared(frame)

    async def on_group_message(self, message: dict[str, Any]) -> None:
        if message["kind"] == "broadcast":
            if message["skip"] == self.member_id or self.closed:
                return
            if self.accepted:
                await self.send(text_data=message["text"])
            else:
                self.held.append(message["text"])
        elif self.closed:
            return
        elif self.early_notices is not None:
            self.early_notices.append(message)
        else:
            await self.on_notice(message)

    async def on_notice(self, message: dict[str, Any]) -> None:
        """A membership notice (live.notify) for this socket's user."""
        if message["kind"] == "join" and message["class_id"] not in self.class_ids:
            # Created a class or was enrolled since connecting: receive its broadcasts from now on.
            self.class_ids.add(message["class_id"])
            await self.join(class_group(message["class_id"]))
        elif message["kind"] == "leave" and message["class_id"] in self.class_ids:
            self.class_ids.discard(message["class_id"])
            self.leave(class_group(message["class_id"]))
        elif message["kind"] == "revoke":
            await self.revoke()
        elif message["kind"] == "checkin" and self.accepted and self.user.role == Role.TEACHER:
            self.follow_checkin()  # a window opened (on any socket of this teacher, in any process)

    def leave(self, group: str) -> None:
        if group in self.hub_groups:
            self.hub_groups.remove(group)
            get_hub().leave([group], self)

    async def revoke(self) -> None:
        """The account or the token stopped being valid: say so and close, as a bad token at connect."""
        if self.closed and self.accepted:
            return  # already closed (revoked twice, or the client left)
        self.forget()
        if not self.accepted:
            return  # connect() sees `closed` and refuses the socket
        await self.send_error(messages.WS_UNAUTHORIZED)
        await self.close(code=CLOSE_POLICY_VIOLATION)


def console_origin(scope: dict[str, Any]) -> str:
    """`scheme://host` of the console as this socket reached it (its Host header): where CHECKIN_CODE's `url`
    points. A Host that is not a plain host[:port] falls back to the address the server listens on."""
    scheme = "https" if scope.get("scheme") in ("wss", "https") else "http"
    host = next((value.decode("latin-1") for name, value in scope.get("headers", []) if name == b"host"), "")
    if not HOST.fullmatch(host):
        server = scope.get("server") or ("localhost", None)
        host = server[0] if server[1] in (None, 80, 443) else f"{server[0]}:{server[1]}"
    return f"{scheme}://{host}"


HOST = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")


# Every client event (the AsyncAPI document is built from this table and live.schemas.SERVER_EVENTS).
EVENTS: dict[str, SocketEvent] = {
    "ATTENDANCE_MARKED": SocketEvent(
        Role.TEACHER,
        teacher_session_unread,
        AttendanceMarkedData,
        AttendanceConsumer.on_attendance_marked,
        "Mark an enrolled student in the teacher's active session (any of the four statuses; an optional "
        "remark, never broadcast); broadcast `{studentId, status}` to its participants.",
        errors=(NotFound(messages.STUDENT_NOT_FOUND),),
    ),
    "MARK_ALL": SocketEvent(
        Role.TEACHER,
        teacher_session_unread,
        MarkAllData,
        AttendanceConsumer.on_mark_all,
        "Give every enrolled student without a mark `status` (default present), never overwriting a mark; "
        "one broadcast with the ids it marked, in enrolment order.",
    ),
    "ATTENDANCE_CLEARED": SocketEvent(
        Role.TEACHER,
        teacher_session_unread,
        ClearedData,
        AttendanceConsumer.on_attendance_cleared,
        "Unmark an enrolled student (the remark goes too); broadcast to the session's participants.",
        errors=(NotFound(messages.STUDENT_NOT_FOUND),),
    ),
    "TODAY_SUMMARY": SocketEvent(
        Role.TEACHER,
        teacher_session,
        NoData,
        AttendanceConsumer.on_today_summary,
        "Broadcast the counts of the marks so far.",
    ),
    "MY_ATTENDANCE": SocketEvent(
        Role.STUDENT,
        student_sessions,
        MyAttendanceData,
        AttendanceConsumer.on_my_attendance,
        "Answer this socket only: the student's live status, or 'not yet updated'.",
    ),
    "DONE": SocketEvent(
        Role.TEACHER,
        session_to_finish,
        NoData,
        AttendanceConsumer.on_done,
        "Mark the unmarked enrolled students absent, persist, end the session, broadcast the final summary.",
        errors=(Unavailable(messages.PERSIST_FAILED), Unavailable(messages.PERSIST_FAILED_KEPT)),
    ),
    "CHECKIN_OPEN": SocketEvent(
        Role.TEACHER,
        teacher_session_unread,
        CheckInOpenData,
        AttendanceConsumer.on_checkin_open,
        "Open (or reopen: a new window) self check-in in the teacher's active session; broadcast `{closesAt}` "
        "(CHECKIN_OPENED); the teacher's own sockets get CHECKIN_CODE at once and at every rotation.",
        replies=("CHECKIN_OPENED", "CHECKIN_CODE"),
    ),
    "CHECKIN_CLOSE": SocketEvent(
        Role.TEACHER,
        teacher_session_unread,
        NoData,
        AttendanceConsumer.on_checkin_close,
        "Close the open check-in window now; broadcast CHECKIN_CLOSED.",
        errors=(NotNow(messages.CHECKIN_NOT_OPEN),),
        replies=("CHECKIN_CLOSED",),
    ),
    "CHECK_IN": SocketEvent(
        Role.STUDENT,
        student_sessions,
        CheckInData,
        AttendanceConsumer.on_check_in,
        "Check in with the code the teacher's screen shows (the current one or the one before it): marked "
        "present, or late after the window's lateAfterMinutes; broadcast ATTENDANCE_MARKED `{studentId, status}`, "
        "this socket first. Never overwrites a mark.",
        errors=(
            NotNow(messages.CHECKIN_NOT_OPEN),
            TooManyRequests(messages.TOO_MANY_ATTEMPTS),
            Invalid(messages.INVALID_CODE),
            NotNow(messages.ALREADY_MARKED),
        ),
        replies=("ATTENDANCE_MARKED",),
    ),
}

"""Every message of the contract (docs/api.md), exactly, defined once.

The code raises and sends these; the API documents list them; the tests keep their own copies on purpose,
so that a change here that breaks the contract fails them.
"""

from typing import Final

# --- HTTP: transport ------------------------------------------------------------------------------
INVALID_SCHEMA: Final = "Invalid request schema"
NOT_FOUND: Final = "Not found"
METHOD_NOT_ALLOWED: Final = "Method not allowed"
PAYLOAD_TOO_LARGE: Final = "Payload too large"
INTERNAL_ERROR: Final = "Internal server error"
# Requests Django itself refuses (a Host not allowed; a CSRF failure in the admin); no API route answers them.
BAD_REQUEST: Final = "Bad request"
FORBIDDEN: Final = "Forbidden"

# --- HTTP: auth and roles -------------------------------------------------------------------------
UNAUTHORIZED: Final = "Unauthorized, token missing or invalid"
TEACHER_REQUIRED: Final = "Forbidden, teacher access required"
STUDENT_REQUIRED: Final = "Forbidden, student access required"

# --- HTTP: accounts -----------------------------------------------------------------------------------
EMAIL_EXISTS: Final = "Email already exists"
BAD_CREDENTIALS: Final = "Invalid email or password"
TOO_MANY_REQUESTS: Final = "Too many requests, try again later"

# --- classes and sessions (HTTP and WebSocket) ---------------------------------------------------------
CLASS_NOT_FOUND: Final = "Class not found"
STUDENT_NOT_FOUND: Final = "Student not found"
SESSION_NOT_FOUND: Final = "Session not found"
NOT_CLASS_TEACHER: Final = "Forbidden, not class teacher"
NOT_ENROLLED: Final = "Forbidden, not enrolled in class"

# --- WebSocket --------------------------------------------------------------------------------------------
WS_UNAUTHORIZED: Final = "Unauthorized or invalid token"
INVALID_FORMAT: Final = "Invalid message format"
UNKNOWN_EVENT: Final = "Unknown event"
TEACHER_EVENT_ONLY: Final = "Forbidden, teacher event only"
STUDENT_EVENT_ONLY: Final = "Forbidden, student event only"
NO_SESSION: Final = "No active attendance session"
PERSIST_FAILED: Final = "Could not persist attendance, please try again"
PERSIST_FAILED_KEPT: Final = "Could not persist attendance; the marks are kept for recovery"
TOO_MANY_MESSAGES: Final = "Too many messages"
TOO_MANY_CONNECTIONS: Final = "Too many connections"

# --- self check-in (HTTP and WebSocket) -------------------------------------------------------------------
CHECKIN_NOT_OPEN: Final = "Check-in is not open"
INVALID_CODE: Final = "Invalid or expired code"
ALREADY_MARKED: Final = "Already marked"
TOO_MANY_ATTEMPTS: Final = "Too many attempts"

# --- WebSocket: values inside messages -------------------------------------------------------------------
NOT_YET_UPDATED: Final = "not yet updated"
ATTENDANCE_PERSISTED: Final = "Attendance persisted"

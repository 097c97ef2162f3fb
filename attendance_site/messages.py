"""Every message of the contract (DESIGN.md), exactly, defined once.

The code raises and sends these; the API documents list them; the tests keep their own copies on purpose,
so that a change here that breaks the contract fails them.
"""

# --- HTTP: transport ------------------------------------------------------------------------------
INVALID_SCHEMA = "Invalid request schema"
NOT_FOUND = "Not found"
METHOD_NOT_ALLOWED = "Method not allowed"
PAYLOAD_TOO_LARGE = "Payload too large"
INTERNAL_ERROR = "Internal server error"
# Requests Django itself refuses (a Host not allowed; a CSRF failure in the admin); no API route answers them.
BAD_REQUEST = "Bad request"
FORBIDDEN = "Forbidden"

# --- HTTP: auth and roles -------------------------------------------------------------------------
UNAUTHORIZED = "Unauthorized, token missing or invalid"
TEACHER_REQUIRED = "Forbidden, teacher access required"
STUDENT_REQUIRED = "Forbidden, student access required"

# --- HTTP: accounts -----------------------------------------------------------------------------------
EMAIL_EXISTS = "Email already exists"
BAD_CREDENTIALS = "Invalid email or password"
TOO_MANY_REQUESTS = "Too many requests, try again later"

# --- classes and sessions (HTTP and WebSocket) ---------------------------------------------------------
CLASS_NOT_FOUND = "Class not found"
STUDENT_NOT_FOUND = "Student not found"
SESSION_NOT_FOUND = "Session not found"
NOT_CLASS_TEACHER = "Forbidden, not class teacher"
NOT_ENROLLED = "Forbidden, not enrolled in class"

# --- WebSocket --------------------------------------------------------------------------------------------
WS_UNAUTHORIZED = "Unauthorized or invalid token"
INVALID_FORMAT = "Invalid message format"
UNKNOWN_EVENT = "Unknown event"
TEACHER_EVENT_ONLY = "Forbidden, teacher event only"
STUDENT_EVENT_ONLY = "Forbidden, student event only"
NO_SESSION = "No active attendance session"
PERSIST_FAILED = "Could not persist attendance, please try again"
PERSIST_FAILED_KEPT = "Could not persist attendance; the marks are kept for recovery"
TOO_MANY_MESSAGES = "Too many messages"
TOO_MANY_CONNECTIONS = "Too many connections"

# --- WebSocket: values inside messages -------------------------------------------------------------------
NOT_YET_UPDATED = "not yet updated"
ATTENDANCE_PERSISTED = "Attendance persisted"

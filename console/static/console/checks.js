// The server's rules for what people type (accounts/schemas.py, common/schemas.py), checked in the page so
// that each message names its field. The server checks again: its answers and their envelope are unchanged.

const NAME_MAX = 200;
const EMAIL_MAX = 254;
export const PASSWORD_MIN = 6;
const PASSWORD_MAX = 1024;
// A local part, "@", and a domain with at least one dot (the server's email-validator asks for one).
const EMAIL_SHAPE = /^[^\s@]+@[^\s@.]+(\.[^\s@.]+)+$/;

export function checkName(label, value) {
  const trimmed = value.trim();
  if (!trimmed) return `${label}: enter a ${label.toLowerCase()} (spaces alone do not count).`;
  if (trimmed.length > NAME_MAX) return `${label}: at most ${NAME_MAX} characters.`;
  return null;
}

export function checkEmail(value) {
  const trimmed = value.trim();
  if (!trimmed) return "Email: enter your email address.";
  if (trimmed.length > EMAIL_MAX) return `Email: at most ${EMAIL_MAX} characters.`;
  if (!EMAIL_SHAPE.test(trimmed)) return "Email: enter a full address, like name@school.org.";
  return null;
}

export function checkPassword(value, min = PASSWORD_MIN) {
  if (value.length === 0) return "Password: enter your password.";
  if (value.length < min) return `Password: at least ${min} characters.`;
  if (value.length > PASSWORD_MAX) return `Password: at most ${PASSWORD_MAX} characters.`;
  return null;
}

// [[field, message or null], ...] → shows each message under its field; true when there is none. The first
// field in error gets the focus.
export function showFieldErrors(results) {
  let first = null;
  for (const [field, message] of results) {
    field.setError(message);
    if (message && !first) first = field;
  }
  first?.input.focus();
  return first === null;
}

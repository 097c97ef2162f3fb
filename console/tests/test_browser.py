"""The console in a real browser (Chromium through Playwright) against a real Daphne server.

Teachers and students are separate browser contexts, as two people on two machines would be.
"""

from __future__ import annotations

import secrets
import shutil
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest
from playwright.sync_api import expect

from console.tests.browser import Console, HeldRequests
from live.tests.services_available import require_service
from tests.servers import DaphneServer, RedisServer, scratch_database
from tests.support import Person, create_class, enrol, start

pytestmark = [pytest.mark.wire, pytest.mark.browser]

# docs/console.md: a student's status follows the teacher's click "within 1 s".
LIVE_LATENCY_MS = 1000


def unique(name: str) -> str:
    return f"{name} {secrets.token_hex(2)}"


def test_sign_up_log_out_and_log_in_again(console, make_person):
    tab = console().open()
    page = tab.page
    page.get_by_role("link", name="Create an account").click()
    name, email = unique("Tess Teacher"), f"tess-{secrets.token_hex(4)}@example.com"
    page.get_by_role("textbox", name="Name", exact=True).fill(name)
    page.get_by_role("textbox", name="Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill("secret123")
    page.get_by_role("radio", name="Teacher", exact=True).check()
    page.get_by_role("button", name="Sign up", exact=True).click()
    expect(page.get_by_role("heading", name="Your classes", level=1)).to_be_visible()
    expect(page.get_by_role("banner")).to_contain_text(name)
    tab.connected()

    page.get_by_role("button", name="Log out", exact=True).click()
    expect(page.get_by_role("button", name="Log in", exact=True)).to_be_visible()
    assert page.evaluate("localStorage.getItem('liveAttendance.auth')") is None

    page.get_by_role("textbox", name="Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill("wrong-password")
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(tab.alert()).to_contain_text("Invalid email or password")

    page.get_by_label("Password", exact=True).fill("secret123")
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page.get_by_role("heading", name="Your classes", level=1)).to_be_visible()
    # The token lives in localStorage (shared by the browser's tabs: docs/console.md), never in a cookie.
    assert page.evaluate("document.cookie") == ""
    assert "token" in page.evaluate("localStorage.getItem('liveAttendance.auth')")


def test_signing_up_with_a_taken_email_says_so(console, make_person):
    taken = make_person("student")
    tab = console().open("#/signup")
    page = tab.page
    page.get_by_role("textbox", name="Name", exact=True).fill("Someone")
    page.get_by_role("textbox", name="Email", exact=True).fill(taken.email)
    page.get_by_label("Password", exact=True).fill("secret123")
    page.get_by_role("radio", name="Student", exact=True).check()
    page.get_by_role("button", name="Sign up", exact=True).click()
    expect(tab.alert()).to_contain_text("Email already exists")


def test_a_token_that_stopped_working_logs_out_with_a_reason(console, make_person):
    tab = console().log_in(make_person("student"))
    tab.page.evaluate(
        "() => { const saved = JSON.parse(localStorage.getItem('liveAttendance.auth'));"
        " saved.token = saved.token.slice(0, -4) + 'AAAA';"
        " localStorage.setItem('liveAttendance.auth', JSON.stringify(saved)); }"
    )
    tab.page.reload()
    expect(tab.page.get_by_role("button", name="Log in", exact=True)).to_be_visible()
    expect(tab.alert()).to_contain_text("Please log in again")
    assert tab.page.evaluate("localStorage.getItem('liveAttendance.auth')") is None


def test_teacher_marks_and_the_student_sees_it_live(console, make_person):
    teacher = make_person("teacher", "Ms Rivera")
    ana, ben, chloe, dmitri = (
        make_person("student", unique(name)) for name in ("Ana Lima", "Ben Okafor", "Chloé Martin", "Dmitri Ivanov")
    )
    tab = console().log_in(teacher)
    class_id = tab.create_class("Biology 101")
    for person in (ana, ben, chloe, dmitri):
        tab.enrol(person.name)
    student = console().log_in(ana).open_class(class_id)
    expect(student.status()).to_have_text("No live session")

    tab.start_session()
    expect(tab.status()).to_contain_text("Present 0 · Absent 0 · Not marked 4 of 4")
    # The teacher's start reaches the student's page by itself (TODAY_SUMMARY, then MY_ATTENDANCE).
    expect(student.status()).to_have_text("Session in progress · Not marked yet")
    expect(tab.mark_button(ana.name, "Present")).to_have_attribute("aria-pressed", "false")

    # Latency as the two people see it: the click event in the teacher's page to the text change in the
    # student's (both pages read the same machine's clock; Playwright's own overhead is not counted).
    tab.page.evaluate(
        "() => document.addEventListener('click', () => { window.__clickedAt = Date.now(); }, true)"
    )
    student.page.evaluate(
        "() => { window.__changes = []; const box = document.querySelector('[role=status]');"
        " new MutationObserver(() => window.__changes.push([box.textContent, Date.now()]))"
        ".observe(box, {childList: true, characterData: true, subtree: true}); }"
    )
    for mark in ("Present", "Absent", "Present"):
        tab.mark_button(ana.name, mark).click()
        expected = f"Session in progress · {mark}"
        expect(student.status()).to_have_text(expected)
        clicked_at = tab.page.evaluate("window.__clickedAt")
        changed_at = student.page.evaluate(f"window.__changes.filter(([text]) => text === {expected!r}).pop()[1]")
        assert changed_at - clicked_at < LIVE_LATENCY_MS, f"{mark}: {changed_at - clicked_at} ms"
        expect(tab.mark_button(ana.name, mark)).to_have_attribute("aria-pressed", "true")
        other = "Absent" if mark == "Present" else "Present"
        expect(tab.mark_button(ana.name, other)).to_have_attribute("aria-pressed", "false")
    tab.mark(ben.name, "Absent")
    tab.mark(chloe.name, "Present")
    expect(tab.status()).to_contain_text("Present 2 · Absent 1 · Not marked 1 of 4")
    expect(student.status()).to_have_text("Session in progress · Present")  # others' marks are not hers
    tab.screenshot("teacher-live", until=tab.page.get_by_role("region", name="Attendance"))
    student.screenshot("student-live")


@dataclass
class LiveClass:
    tab: Console  # the teacher's
    class_id: str
    teacher: Person
    students: list[Person]


def live_classroom(console, make_person, api) -> LiveClass:
    """A class with two students made over the API; the teacher's tab on its page, a session started there."""
    teacher = make_person("teacher")
    students = [make_person("student", unique(name)) for name in ("Ana", "Ben")]
    class_id = create_class(api, teacher, unique("History"))
    enrol(api, teacher, class_id, *students)
    tab = console().log_in(teacher).open_class(class_id)
    tab.start_session()
    return LiveClass(tab, class_id, teacher, students)


def test_end_session_shows_the_result_to_the_student(console, make_person, api):
    live = live_classroom(console, make_person, api)
    tab, class_id, (ana, ben) = live.tab, live.class_id, live.students
    student = console().log_in(ana).open_class(class_id)
    tab.mark(ana.name, "Present")
    expect(student.status()).to_have_text("Session in progress · Present")

    # Cancelling the confirmation keeps the session.
    tab.page.get_by_role("button", name="End session", exact=True).click()
    tab.page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
    expect(tab.status()).to_contain_text("Session live")

    tab.end_session()
    expect(tab.status()).to_have_text("Session ended · Present 1 · Absent 1 · Total 2")
    expect(tab.page.get_by_role("button", name="Start session", exact=True)).to_be_visible()
    expect(student.status()).to_have_text("Session ended · Present")
    # Ben was never marked: DONE made him absent, and his page (opened afterwards) says so.
    late = console().log_in(ben).open_class(class_id)
    expect(late.status()).to_have_text("No live session · Last session: Absent")
    student.screenshot("student-ended")


def test_a_reload_mid_session_restores_the_marks(console, make_person, api):
    live = live_classroom(console, make_person, api)
    tab, class_id, (ana, ben) = live.tab, live.class_id, live.students
    student = console().log_in(ben).open_class(class_id)
    tab.mark(ana.name, "Present")
    tab.mark(ben.name, "Absent")
    expect(student.status()).to_have_text("Session in progress · Absent")

    tab.page.reload()
    expect(tab.mark_button(ana.name, "Present")).to_have_attribute("aria-pressed", "true")
    expect(tab.mark_button(ben.name, "Absent")).to_have_attribute("aria-pressed", "true")
    expect(tab.mark_button(ben.name, "Present")).to_have_attribute("aria-pressed", "false")
    expect(tab.status()).to_contain_text("Present 1 · Absent 1 · Not marked 0 of 2")
    student.page.reload()
    expect(student.status()).to_have_text("Session in progress · Absent")
    # Still logged in after the reload (the token is in localStorage), and still live.
    tab.mark(ben.name, "Present")
    expect(student.status()).to_have_text("Session in progress · Present")


def test_a_name_with_markup_renders_as_text(console, make_person, api):
    hostile = '<script>window.__pwned = 1</script><img src="/pwned.png" onerror="window.__pwned = 2">'
    teacher = make_person("teacher")
    student = make_person("student", hostile)
    tab = console().log_in(teacher)
    class_id = tab.create_class("<b>Chemistry</b> & <i>friends</i>")
    tab.enrol(hostile)
    tab.start_session()
    expect(tab.row(hostile)).to_contain_text(hostile)
    tab.mark(hostile, "Present")
    assert tab.page.evaluate("window.__pwned") is None
    assert tab.page.locator("main script, main img, main b, main i").count() == 0
    assert not any("pwned" in url for url in tab.traffic.requests)
    expect(tab.page.get_by_role("heading", level=1)).to_have_text("<b>Chemistry</b> & <i>friends</i>")
    mine = console().log_in(student).open_class(class_id)
    expect(mine.page.get_by_role("banner")).to_contain_text(hostile)
    assert mine.page.evaluate("window.__pwned") is None


def test_every_socket_error_is_shown_in_words(console, make_person, api):
    """The teacher starts another class's session elsewhere (replacing this one, as the spec says): a mark
    in the stale page is refused by the server, and the page shows the ERROR's message."""
    live = live_classroom(console, make_person, api)
    start(api, live.teacher, create_class(api, live.teacher, "Elsewhere"))
    live.tab.mark_button(live.students[0].name, "Present").click()
    expect(live.tab.alert()).to_contain_text("Student not found")


def test_the_page_sends_its_content_security_policy(console):
    tab = console()
    response = tab.page.goto("/")
    policy = response.headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    assert directives["default-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    # An inline script is refused by the policy (the console has none; this proves the header is in force).
    tab.page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.__inline = 1';"
        " document.head.append(s); }"
    )
    assert tab.page.evaluate("window.__inline") is None
    tab.traffic.csp_violations.clear()  # the refusal above was the point


def test_phone_sized_screen_and_keyboard(console, make_person, api):
    teacher = make_person("teacher")
    ana = make_person("student", unique("Ana"))
    class_id = create_class(api, teacher, unique("Art"))
    enrol(api, teacher, class_id, ana)
    tab = console(viewport={"width": 390, "height": 844}).log_in(teacher).open_class(class_id)
    page = tab.page
    # Keyboard only: reach "Start session" with Tab and press Enter; then mark with Space.
    start_button = page.get_by_role("button", name="Start session", exact=True)
    for _ in range(30):
        page.keyboard.press("Tab")
        if start_button.evaluate("b => b === document.activeElement"):
            break
    else:
        pytest.fail("Start session cannot be reached with Tab")
    page.keyboard.press("Enter")
    present = tab.mark_button(ana.name, "Present")
    expect(present).to_be_visible()
    present.focus()
    page.keyboard.press("Tab")
    page.keyboard.press("Space")  # Tab moved to "Absent"
    expect(tab.mark_button(ana.name, "Absent")).to_have_attribute("aria-pressed", "true")
    expect(tab.mark_button(ana.name, "Absent")).to_be_focused()  # focus survives the update
    # Nothing wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    student = console(viewport={"width": 390, "height": 844}).log_in(ana).open_class(class_id)
    expect(student.status()).to_have_text("Session in progress · Absent")
    assert student.page.evaluate("document.documentElement.scrollWidth") <= 390
    tab.screenshot("teacher-phone", until=page.get_by_role("region", name="Attendance"))


def test_keyboard_focus_survives_a_late_answer_about_the_live_session(console, make_person, api):
    """The class page redraws its live area when GET /attendance/active answers (and on every reconnect):
    a keyboard user who already reached "Start session" keeps the focus, and Enter still starts it."""
    teacher = make_person("teacher")
    ana = make_person("student", unique("Ana"))
    class_id = create_class(api, teacher, unique("Art"))
    enrol(api, teacher, class_id, ana)
    tab = console().log_in(teacher)
    page = tab.page
    held = HeldRequests(page, "**/attendance/active")
    tab.open_class(class_id)
    start_button = page.get_by_role("button", name="Start session", exact=True)
    for _ in range(30):
        page.keyboard.press("Tab")
        if start_button.evaluate("b => b === document.activeElement"):
            break
    else:
        pytest.fail("Start session cannot be reached with Tab")
    held.first()  # the page asks once it has loaded the class
    held.release()
    page.wait_for_load_state("networkidle")
    expect(start_button).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="End session")).to_be_visible()


def test_an_answer_about_the_live_session_older_than_the_start_is_dropped(console, make_person, api):
    """GET /attendance/active asked at page load ("no session") but answered after the teacher started one
    must not put the page back to "No live session"; and after DONE the keyboard focus is on the live
    area's heading, not lost with the "End session" button."""
    teacher = make_person("teacher")
    ana = make_person("student", unique("Ana"))
    class_id = create_class(api, teacher, unique("Art"))
    enrol(api, teacher, class_id, ana)
    tab = console().log_in(teacher)
    page = tab.page
    held = HeldRequests(page, "**/attendance/active")
    tab.open_class(class_id)
    stale = held.first()
    before_start = stale.fetch()  # the server's answer now: no live session
    assert before_start.json() == {"success": True, "data": None}
    tab.start_session()
    with page.expect_request_finished(lambda request: request is stale.request):
        stale.fulfill(response=before_start)  # ...delivered only after the start
    page.wait_for_timeout(300)  # the page's promise chain has run (the old page redrew at once)
    expect(tab.status()).to_contain_text("Session live since")
    expect(page.get_by_role("button", name="End session", exact=True)).to_be_visible()
    held.release(answered=(stale,))  # and the socket's own restore, if it asked meanwhile

    tab.mark(ana.name, "Present")
    tab.end_session()
    expect(page.get_by_role("heading", name="Attendance", exact=True)).to_be_focused()


@contextmanager
def a_session_across_a_restart(console, tmp_path, extra_env=None):
    """The only server process, on a scratch database (plus `extra_env`): a teacher's and Ana's pages in a live
    session where Ana is marked present; the server is killed (both pages say "Reconnecting…") and started
    again on the same port and database. Yields (teacher's tab, Ana's tab, Ana, Ben) once both reconnected."""
    with scratch_database(tmp_path) as db_env:
        env = {**db_env, **(extra_env or {})}
        server = DaphneServer(env, log_path=tmp_path / "daphne.log")
        server.migrate()
        server.start()
        try:
            with httpx.Client(base_url=server.http_url, timeout=10) as client:
                teacher = Person(client, "teacher")
                ana, ben = Person(client, "student", unique("Ana")), Person(client, "student", unique("Ben"))
                class_id = create_class(client, teacher, unique("Physics"))
                enrol(client, teacher, class_id, ana, ben)
            tab = console(server.http_url).log_in(teacher).open_class(class_id)
            tab.start_session()
            student = console(server.http_url).log_in(ana).open_class(class_id)
            tab.mark(ana.name, "Present")
            expect(student.status()).to_have_text("Session in progress · Present")
            student.record_status_texts()

            server.kill()
            expect(tab.connection()).to_have_text("Reconnecting…")
            expect(student.connection()).to_have_text("Reconnecting…")
            server = DaphneServer(env, port=server.port, log_path=tmp_path / "daphne.log").start()
            tab.connected(timeout=20_000)
            student.connected(timeout=20_000)
            yield tab, student, ana, ben
        finally:
            server.stop()


def test_the_console_reconnects_by_itself_after_a_server_restart(console, tmp_path):
    """The only server process (with Redis for its fan-out) is killed and started again on the same port and
    database, which keeps the session: both pages reconnect without anyone touching them, keep their marks, and
    carry on live."""
    if shutil.which("redis-server") is None:
        require_service("redis-server", "PATH", FileNotFoundError("apt-get install -y redis-server"))
    redis_server = RedisServer(tmp_path).start()
    try:
        with a_session_across_a_restart(console, tmp_path, {"REDIS_URL": redis_server.url}) as (tab, student, ana, ben):
            expect(tab.mark_button(ana.name, "Present")).to_have_attribute("aria-pressed", "true")
            expect(student.status()).to_have_text("Session in progress · Present")
            tab.mark(ben.name, "Absent")
            tab.mark_button(ana.name, "Absent").click()
            expect(student.status()).to_have_text("Session in progress · Absent")
            expect(tab.status()).to_contain_text("Present 0 · Absent 2")
            tab.end_session()
            expect(student.status()).to_have_text("Session ended · Absent")
    finally:
        redis_server.kill()


# --- History and reports: these need the history routes of docs/api.md (GET /classes, /attendance/active,
# the sessions, report and my-history routes), built in parallel (issue 12).


def test_class_lists_link_to_each_class(console, make_person, api):
    teacher, ana = make_person("teacher"), make_person("student", unique("Ana"))
    older, newer = unique("Algebra"), unique("Botany")
    older_id = create_class(api, teacher, older)
    newer_id = create_class(api, teacher, newer)
    enrol(api, teacher, older_id, ana)
    start(api, teacher, older_id)

    tab = console().log_in(teacher)
    classes = tab.page.get_by_role("list", name="Classes")
    expect(classes.get_by_role("link")).to_have_text([newer, older])  # newest class first
    expect(classes.get_by_role("listitem").filter(has_text=older)).to_contain_text("1 student")
    expect(classes.get_by_role("listitem").filter(has_text=older)).to_contain_text("Live now")
    tab.page.get_by_role("link", name=newer, exact=True).click()
    expect(tab.page.get_by_role("heading", name=newer, level=1)).to_be_visible()
    assert tab.page.url.endswith(f"#/class/{newer_id}")

    mine = console().log_in(ana)
    expect(mine.page.get_by_role("list", name="Classes").get_by_role("link")).to_have_text([older])
    mine.page.get_by_role("link", name=older, exact=True).click()
    expect(mine.status()).to_have_text("Session in progress · Not marked yet")


def test_history_session_records_and_csv_download(console, make_person, api):
    live = live_classroom(console, make_person, api)
    tab, class_id, (ana, ben) = live.tab, live.class_id, live.students
    student = console().log_in(ana).open_class(class_id)
    expect(student.page.get_by_role("region", name="Your history")).to_contain_text("No saved session yet")
    tab.mark(ana.name, "Present")
    tab.end_session()

    page = tab.page
    sessions = page.get_by_role("list", name="Past sessions")
    expect(sessions.get_by_role("listitem")).to_have_count(1)
    expect(sessions).to_contain_text("1 present, 1 absent of 2")
    report = page.get_by_role("region", name="History").get_by_role("table")
    expect(report.get_by_role("row").filter(has_text=ana.name)).to_contain_text("100 %")
    expect(report.get_by_role("row").filter(has_text=ben.name)).to_contain_text("0 %")
    expect(student.page.get_by_role("list", name="Past sessions")).to_contain_text("Present")

    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download CSV", exact=True).click()
    download = download_info.value
    assert download.suggested_filename.endswith("-attendance.csv"), download.suggested_filename
    lines = open(download.path(), encoding="utf-8").read().splitlines()
    header = lines[0]
    assert header.startswith("studentId,name,email,") and header.endswith(",present,absent,late,excused,rate"), header
    assert any(line.startswith(f"{ana.id},") and ",present,1,0,0,0," in line for line in lines), lines
    tab.screenshot("teacher-history")

    sessions.get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("session of")
    expect(page.get_by_role("row", name=ana.name, exact=True)).to_contain_text("Present")
    expect(page.get_by_role("row", name=ben.name, exact=True)).to_contain_text("Absent")

"""The Daphne command line that `make run` and the wire tests share."""

from server.serve import daphne_argv


def test_daphne_serves_the_asgi_app_on_the_port_with_the_64_kib_frame_limit():
    argv = daphne_argv(4000, "0.0.0.0")
    assert argv[0] == "daphne" and argv[-1] == "attendance_site.asgi:application"
    assert argv[argv.index("-p") + 1] == "4000"
    assert argv[argv.index("-b") + 1] == "0.0.0.0"
    assert argv[argv.index("--websocket-max-message-size") + 1] == str(64 * 1024)
    assert argv[argv.index("--websocket-max-frame-size") + 1] == str(64 * 1024)
    # docs/production.md limits: a handshake not completed within 10 s is closed (the request itself: daphne_limits).
    assert argv[argv.index("--websocket_connect_timeout") + 1] == "10"
    assert "--proxy-headers" not in argv
    assert argv[argv.index("-v") + 1] == "1"  # Daphne's access log, on standard output


def test_proxy_headers_only_when_asked():
    assert "--proxy-headers" in daphne_argv(3000, proxy_headers=True)


def test_the_access_log_only_when_asked():
    assert daphne_argv(3000, access_log=False)[daphne_argv(3000).index("-v") + 1] == "0"

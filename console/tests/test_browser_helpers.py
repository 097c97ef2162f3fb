"""The browser tests' own checks can fail: a page that reached another host is flagged."""

from console.tests.browser import Traffic


def test_traffic_flags_every_url_off_the_servers_origin():
    traffic = Traffic("http://127.0.0.1:5123")
    traffic.requests += [
        "http://127.0.0.1:5123/",
        "http://127.0.0.1:5123/static/console/app.js",
        "blob:http://127.0.0.1:5123/5b0c-uuid",
        "https://cdn.example.com/lib.js",
        "http://127.0.0.1:5124/other-port",
        "http://localhost:5123/same-machine-other-origin",
        "data:image/png;base64,AAAA",
    ]
    traffic.sockets += ["ws://127.0.0.1:5123/ws?token=x", "wss://evil.example/ws"]
    assert traffic.foreign() == [
        "https://cdn.example.com/lib.js",
        "http://127.0.0.1:5124/other-port",
        "http://localhost:5123/same-machine-other-origin",
        "data:image/png;base64,AAAA",
        "wss://evil.example/ws",
    ]

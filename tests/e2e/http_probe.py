# SPDX-License-Identifier: MIT
"""Talking to a running dispatchd's HTTP endpoint in the system tests: the
environment that turns it on (an ephemeral port), the port it logged in its
http_listening event, one request, /metrics as text and as samples, and
/readyz. Deadlines scale with DD_TEST_TIMEOUT_MULTIPLIER like the fixtures'
waits."""
import http.client
import json
import re

from conftest import MULT, wait_for

HTTP_ENV = {"DISPATCHD_HTTP": "127.0.0.1:0"}


def http_port(d, timeout=30):
    """The port dispatchd logged in its http_listening event."""
    def find():
        for ev in d.events("http_listening"):
            m = re.search(r"\(port (\d+)\)", ev.get("msg", ""))
            if m:
                return int(m.group(1))
        assert d.proc.poll() is None, f"dispatchd exited:\n{d.log_text()[-3000:]}"
        return None
    return wait_for(find, timeout, "the http_listening log event")


def get(port, path, method="GET", timeout=5, headers=None):
    """(status, headers dict, body str) of one request."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout * MULT)
    try:
        c.request(method, path, headers=headers or {})
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read().decode("utf-8", "replace")
    finally:
        c.close()


def metrics(port):
    status, hdrs, body = get(port, "/metrics")
    assert status == 200
    assert hdrs["Content-Type"].startswith("text/plain; version=0.0.4")
    return body


def samples(text):
    """{'name{labels}': value} of every sample line."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            out[series] = float(value)
    return out


def readyz(port):
    """(status, parsed body) of /readyz, or (None, None) when it does not answer."""
    try:
        status, _, body = get(port, "/readyz", timeout=2)
    except OSError:
        return None, None
    return status, json.loads(body)

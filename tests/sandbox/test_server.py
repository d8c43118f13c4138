"""The sandbox as a server: auth, rate limit, faults, latency, keep-alive, bounds, the request log,
and clean errors when it cannot start.

"DESIGN" means the product contract ("Talking to Lofty", "Sandbox").
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from reconciler.errors import SandboxError
from reconciler.sandbox import MAX_BODY_BYTES, Sandbox, SandboxConfig
from tests.sandbox.helpers import BEARER, assert_vendor_shape, put, read
from tests.vendor import REPO

# --- auth -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "unwrap", "shape"),
    [("/v1.0/leads/1", "lead", "LeadResponse"), ("/v1.0/leads", None, "LeadListResponse")],
)
def test_both_auth_schemes_are_accepted(
    sandbox: Sandbox, path: str, unwrap: str | None, shape: str
) -> None:
    """DESIGN, "CLI": an access token is sent as `Bearer`, an API key as `token`."""
    for header in ("Bearer secret-token", "token api-key"):
        headers = {"Authorization": header}
        written = httpx.put(f"{sandbox.url}/v1.0/leads/1", json={}, headers=headers)
        assert written.json() == {"leadId": 1}
        response = httpx.get(f"{sandbox.url}{path}", headers=headers)
        assert response.status_code == 200, header
        body = response.json()
        assert_vendor_shape(body[unwrap] if unwrap else body, shape)


@pytest.mark.parametrize(
    "header", [None, "Bearer wrong", "Basic secret-token", "token", "Bearer", "api-key"]
)
@pytest.mark.parametrize("method", ["PUT", "GET"])
def test_missing_or_wrong_credentials_get_401_with_a_bare_string(
    sandbox: Sandbox, header: str | None, method: str
) -> None:
    headers = {} if header is None else {"Authorization": header}
    for path in ("/v1.0/leads/1", "/v1.0/leads"):  # auth comes before the route
        response = httpx.request(method, f"{sandbox.url}{path}", headers=headers, json={})
        assert response.status_code == 401
        assert response.json() == "Unauthorized"
        assert "X-RateLimit-Remaining" in response.headers
    assert sandbox.lead(1) is None


def test_without_configured_credentials_any_secret_is_accepted() -> None:
    with Sandbox(SandboxConfig()) as sandbox:
        ok = httpx.get(f"{sandbox.url}/v1.0/leads/3", headers={"Authorization": "token anything"})
        refused = httpx.get(f"{sandbox.url}/v1.0/leads/3")
    assert ok.status_code == 200 and ok.json()["lead"]["leadId"] == 3
    assert_vendor_shape(ok.json()["lead"], "LeadResponse")
    assert refused.status_code == 401


def test_unknown_api_paths_and_methods(client: httpx.Client) -> None:
    assert client.get("/v1.0/other").json() == {"code": 404, "message": "Not Found"}
    assert client.post("/v1.0/leads/1", json={}).status_code == 405
    assert client.put("/v1.0/leads", json={}).status_code == 405
    assert client.get("/elsewhere").status_code == 404


# --- rate limiting, faults, latency, keep-alive ---------------------------------------------------


def test_rate_limit_headers_and_429_past_the_limit() -> None:
    """DESIGN, "Talking to Lofty": X-RateLimit-Limit/Remaining/Reset on every response; over the
    limit 429 `{"message":"Too Many Requests"}`. GETs count like PUTs."""
    config = SandboxConfig(rate_limit=5, rate_window=2)
    with Sandbox(config) as sandbox, httpx.Client(base_url=sandbox.url, headers=BEARER) as client:
        started = time.time()
        responses = [put(client, 1, {"source": "x"}) for _ in range(3)]
        responses += [client.get("/v1.0/leads/1"), client.get("/v1.0/leads")]
        assert [r.status_code for r in responses] == [200] * 5
        assert [int(r.headers["X-RateLimit-Remaining"]) for r in responses] == [4, 3, 2, 1, 0]
        assert {r.headers["X-RateLimit-Limit"] for r in responses} == {"5"}
        reset = int(responses[0].headers["X-RateLimit-Reset"])
        assert started + 1 <= reset <= started + 3

        refused = client.get("/v1.0/leads/1")
        assert refused.status_code == 429
        assert refused.json() == {"message": "Too Many Requests"}
        assert refused.headers["X-RateLimit-Remaining"] == "0"
        assert 1 <= int(refused.headers["Retry-After"]) <= 2

        time.sleep(max(0.0, reset - time.time()) + 0.05)
        again = put(client, 1, {"source": "y"})
        assert again.status_code == 200
        assert again.headers["X-RateLimit-Remaining"] == "4"

        stats = sandbox.stats()
    assert stats["requests"] == 7
    assert stats["status_counts"] == {"200": 6, "429": 1}
    assert stats["puts"] == {"1": 4} and stats["gets"] == {"1": 1} and stats["lists"] == 1


def test_unlimited_sandbox_still_reports_rate_limit_headers(client: httpx.Client) -> None:
    response = put(client, 1, {"source": "x"})
    assert int(response.headers["X-RateLimit-Limit"]) >= 100_000
    assert int(response.headers["X-RateLimit-Remaining"]) >= 99_999
    assert int(response.headers["X-RateLimit-Reset"]) > time.time()


def test_fault_injection_only_yields_faults_for_reads_and_writes() -> None:
    config = SandboxConfig(fault_rate=1.0, random_seed=7)
    outcomes: set[str] = set()
    with Sandbox(config) as sandbox, httpx.Client(base_url=sandbox.url, headers=BEARER) as client:
        for index in range(45):
            method, path = [
                ("PUT", "/v1.0/leads/8"),
                ("GET", "/v1.0/leads/8"),
                ("GET", "/v1.0/leads"),
            ][index % 3]
            try:
                response = client.request(method, path, json={"firstName": "Never"})
            except (httpx.RemoteProtocolError, httpx.ReadError):
                outcomes.add("dropped")
                continue
            outcomes.add(str(response.status_code))
            if response.status_code == 503:
                assert response.headers["Retry-After"] == "1"
            else:
                assert response.json() == {"code": 500, "message": "Internal Server Error"}
        stats = sandbox.stats()
        assert sandbox.lead(8) is None
    assert outcomes == {"500", "503", "dropped"}
    assert stats["faults"] == 45
    assert (stats["puts"], stats["gets"], stats["lists"]) == ({"8": 15}, {"8": 15}, 15)
    assert stats["requests"] == 45


def test_fault_injection_is_reproducible_with_a_seed() -> None:
    def outcomes() -> list[str]:
        seen = []
        with Sandbox(SandboxConfig(fault_rate=0.5, random_seed=3)) as sandbox:
            for _ in range(20):
                try:
                    response = httpx.put(f"{sandbox.url}/v1.0/leads/1", json={}, headers=BEARER)
                    seen.append(str(response.status_code))
                except httpx.TransportError:
                    seen.append("dropped")
        return seen

    first = outcomes()
    assert "200" in first and len(set(first)) > 1
    assert outcomes() == first


def test_latency_is_applied_and_requests_are_served_concurrently() -> None:
    with (
        Sandbox(SandboxConfig(latency_ms=200)) as sandbox,
        httpx.Client(base_url=sandbox.url, headers=BEARER) as client,
    ):
        for request in (lambda: put(client, 1, {"source": "x"}), lambda: client.get("/v1.0/leads")):
            started = time.perf_counter()
            assert request().status_code == 200
            assert time.perf_counter() - started >= 0.2

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=10) as pool:
            codes = list(pool.map(lambda i: put(client, i + 1, {}).status_code, range(10)))
        elapsed = time.perf_counter() - started
    assert codes == [200] * 10
    assert 0.2 <= elapsed < 1.0  # ten sequential requests would take two seconds


def test_keep_alive_reuses_one_connection(client: httpx.Client) -> None:
    ports = set()
    for lead_id in range(1, 6):
        with client.stream("PUT", f"/v1.0/leads/{lead_id}", json={"source": "x"}) as response:
            assert response.status_code == 200
            response.read()
            stream = response.extensions["network_stream"]
            ports.add(stream.get_extra_info("client_addr")[1])
    assert len(ports) == 1


def test_stats_count_every_api_request(client: httpx.Client, sandbox: Sandbox) -> None:
    assert sandbox.stats() == {
        "requests": 0,
        "puts": {},
        "gets": {},
        "lists": 0,
        "status_counts": {},
        "faults": 0,
        "first_request_at": None,
        "last_request_at": None,
    }
    before = time.time()
    put(client, 1, {"source": "x"})
    put(client, 1, {"firstName": 3})
    put(client, 2, {"source": "x"})
    read(client, 2)
    client.get("/v1.0/leads")
    httpx.put(f"{sandbox.url}/v1.0/leads/2", json={})  # no credentials
    client.get("/_sandbox/leads")  # admin: not counted
    stats = client.get("/_sandbox/stats").json()
    assert stats == sandbox.stats()
    assert stats["requests"] == 6
    assert (stats["puts"], stats["gets"], stats["lists"]) == ({"1": 2, "2": 1}, {"2": 1}, 1)
    assert stats["status_counts"] == {"200": 4, "400": 1, "401": 1}
    assert stats["faults"] == 0
    assert before <= stats["first_request_at"] <= stats["last_request_at"] <= time.time()
    assert [p["leadId"] for p in client.get("/_sandbox/puts").json()["puts"]] == [1, 1, 2]


def test_stop_closes_the_port() -> None:
    sandbox = Sandbox(SandboxConfig())
    url = sandbox.start()
    assert httpx.get(f"{url}/_sandbox/stats").status_code == 200
    sandbox.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/_sandbox/stats")


# --- bounds: capped bodies, no hung handler, JSON everywhere --------------------------------------


def _raw(url: str, data: bytes, *, timeout: float = 10) -> bytes:
    """Send raw bytes, read until the server closes (or `timeout` passes: then fail)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as connection:
        connection.sendall(data)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
        return received


def _json_body(response: bytes) -> object:
    head, _, body = response.partition(b"\r\n\r\n")
    assert b"Content-Type: application/json" in head
    return json.loads(body)


def test_oversized_and_chunked_bodies_are_refused_unread(client: httpx.Client) -> None:
    huge = client.put("/v1.0/leads/1", content=b"x" * (MAX_BODY_BYTES + 1))
    assert huge.status_code == 413 and huge.json()["code"] == 413
    chunked = client.put("/v1.0/leads/1", content=iter([b"{}"]))
    assert chunked.status_code == 411 and chunked.json()["code"] == 411


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /v1.0/leads/1 HTTP/9.9\r\n\r\n", 505),
        (b"NONSENSE\r\n\r\n", 400),
        (b"OPTIONS /v1.0/leads/1 HTTP/1.1\r\nHost: x\r\n\r\n", 501),
        (b"GET http://[oops/v1.0/leads HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 400),
    ],
)
def test_every_error_is_json(sandbox: Sandbox, request_bytes: bytes, status: int) -> None:
    response = _raw(sandbox.url, request_bytes)
    assert response.startswith(f"HTTP/1.1 {status} ".encode()) or response.startswith(
        f"HTTP/1.0 {status} ".encode()
    )
    body = _json_body(response)
    assert isinstance(body, dict) and body["code"] == status


def test_a_stalled_request_does_not_hold_its_thread() -> None:
    with Sandbox(SandboxConfig(request_timeout=0.5)) as sandbox:
        started = time.monotonic()
        # Headers promise 10 bytes of body; 2 arrive, then the client stalls.
        stalled = _raw(sandbox.url, b"PUT /v1.0/leads/1 HTTP/1.1\r\nContent-Length: 10\r\n\r\n{}")
        assert stalled == b""  # closed by the server, long before the 10 s the test waits
        assert time.monotonic() - started < 9
        dripping = _raw(sandbox.url, b"GET /v1.0/leads/1 HTTP/1.1\r\nHost: x")  # headers never end
        assert dripping == b""
        assert httpx.get(f"{sandbox.url}/v1.0/leads/1", headers=BEARER).status_code == 200


# --- the request log ----------------------------------------------------------------------------

_LINE = re.compile(r"^(?P<method>\S+) (?P<path>\S+) (?P<status>\S+) (?P<ms>\d+)ms$")


def test_each_request_is_logged_once_escaped() -> None:
    lines: list[str] = []
    with Sandbox(SandboxConfig(), log=lines.append) as sandbox:
        put_response = httpx.put(f"{sandbox.url}/v1.0/leads/1?x=secret", json={}, headers=BEARER)
        assert put_response.status_code == 200
        httpx.get(f"{sandbox.url}/_sandbox/stats")
        _raw(sandbox.url, b"GET /v1.0/\x1b[31mred\x07 HTTP/1.1\r\nConnection: close\r\n\r\n")
        _raw(sandbox.url, b"::error::x / HTTP/1.1\r\nConnection: close\r\n\r\n")
    parsed = [_LINE.match(line) for line in lines]
    assert all(parsed), lines
    shown = [(m["method"], m["path"], m["status"]) for m in parsed if m]
    assert shown == [
        ("PUT", "/v1.0/leads/1", "200"),  # no query string: it may hold client data
        ("GET", "/_sandbox/stats", "200"),
        ("GET", "/v1.0/\\u001b[31mred\\u0007", "401"),
        ("-", "/", "501"),  # a method that is not one is not echoed
    ]
    assert not any(char < " " for line in lines for char in line)


def test_serve_runs_until_sigterm_and_logs_each_request() -> None:
    script = (
        "import sys\n"
        "from reconciler.sandbox import SandboxConfig, serve\n"
        "serve(SandboxConfig(), ready=lambda url: print(url, flush=True),\n"
        "      log=lambda line: print(line, file=sys.stderr, flush=True))\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert httpx.put(f"{url}/v1.0/leads/1", json={}, headers=BEARER).status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
        assert re.fullmatch(r"PUT /v1\.0/leads/1 200 \d+ms\n", process.stderr.read())
    finally:
        process.kill()
        process.wait()


# --- clean errors: the command layer turns these into one line and exit 1 ------------------------


def test_a_port_in_use_is_a_sandbox_error() -> None:
    with Sandbox(SandboxConfig()) as first:
        port = int(first.url.rsplit(":", 1)[1])
        with pytest.raises(SandboxError, match=rf"cannot listen on 127\.0\.0\.1:{port}: .*in use"):
            Sandbox(SandboxConfig(port=port)).start()


def _cli(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "LOFTY_ACCESS_TOKEN": "sandbox-test-token",
    }
    return subprocess.run(
        [sys.executable, "-m", "reconciler", "sandbox", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        cwd=REPO,
    )


def test_cli_reports_a_port_in_use_and_a_bad_seed_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("- leadId: 1\n  stage: [not, a, string]\n")
    with Sandbox(SandboxConfig()) as first:
        port = first.url.rsplit(":", 1)[1]
        in_use = _cli("--port", port, tmp_path=tmp_path)
    seeded = _cli("--seed", str(bad), tmp_path=tmp_path)
    for result in (in_use, seeded):
        assert result.returncode == 1
        assert "Traceback" not in result.stderr and result.stdout == ""
        assert len(result.stderr.splitlines()) == 1, result.stderr
    assert in_use.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}: ")
    assert seeded.stderr.startswith(f"error: seed file {bad}: entry 0 (leadId 1): ")


def test_cli_serves_generated_leads_and_logs_each_request_on_stderr(tmp_path: Path) -> None:
    args = ("--generate", "3", "--random-seed", "1", "--metadata-key", "get_metadata")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LOFTY_ACCESS_TOKEN": "only-this"}
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "sandbox", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        url = process.stdout.readline().strip().rsplit(" ", 1)[-1]
        assert url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=url, headers={"Authorization": "Bearer only-this"}) as client:
            body = client.get("/v1.0/leads", params={"limit": 100, "offset": 0}).json()
            wrong = client.get("/v1.0/leads/100001", headers={"Authorization": "Bearer other"})
        assert body["get_metadata"]["total"] == 3
        assert wrong.status_code == 401  # with LOFTY_ACCESS_TOKEN set, only that secret
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
        lines = process.stderr.read().splitlines()
    finally:
        process.kill()
        process.wait()
    assert lines[0].startswith("Point the tool at it: export LOFTY_API_URL=")
    assert [line.rsplit(" ", 1)[0] for line in lines[1:]] == [
        "GET /v1.0/leads 200",
        "GET /v1.0/leads/100001 401",
    ]

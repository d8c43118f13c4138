"""The Lofty client: settings, the PUT it sends, error handling, retries, pacing, secrecy.

HTTP is faked at the transport (httpx.MockTransport) and time by a fake clock whose sleep only
advances it, so retry and pacing waits cost nothing; one test uses a real loopback server.
"""

from __future__ import annotations

import asyncio
import email.utils
import heapq
import http.server
import itertools
import json
import logging
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import httpx
import pytest

from reconciler.client import (
    ApiUnreachableError,
    ClientSettings,
    Credentials,
    LoftyClient,
    settings_from_env,
)
from reconciler.errors import ApiError, ConfigError
from reconciler.pacing import parse_rate_limit

SECRET = "s3cr3t-TOKEN-value"
WALL0 = 1_700_000_000.0  # fake epoch at fake monotonic 0

Handler = Callable[[httpx.Request], Coroutine[Any, Any, httpx.Response]]
Answer = Callable[[httpx.Request], httpx.Response]


class FakeTime:
    """Monotonic and wall clocks that move only when someone sleeps.

    Sleepers wake in order of their wake-up time, each once every other task has had its turn,
    so concurrent tasks see time as they would on a real clock.
    """

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self._sleepers: list[tuple[float, int]] = []
        self._seq = itertools.count()

    def clock(self) -> float:
        return self.now

    def wall(self) -> float:
        return WALL0 + self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        me = (self.now + max(seconds, 0.0), next(self._seq))
        heapq.heappush(self._sleepers, me)
        while True:
            for _ in range(20):
                await asyncio.sleep(0)
            if self._sleepers[0] == me:
                heapq.heappop(self._sleepers)
                self.now = max(self.now, me[0])
                return


def settings(**overrides: Any) -> ClientSettings:
    values: dict[str, Any] = {
        "base_url": "http://127.0.0.1:9",
        "credentials": Credentials("Bearer", SECRET),
    }
    values.update(overrides)
    return ClientSettings(**values)


def ok(request: httpx.Request, **headers: str) -> httpx.Response:
    lead_id = int(request.url.path.rsplit("/", 1)[1])
    return httpx.Response(200, json={"leadId": lead_id}, headers=headers)


class Recorder:
    """A fake Lofty: records each request (and the fake time it came) and answers in turn."""

    def __init__(self, fake: FakeTime, *answers: Answer):
        self.fake = fake
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.times: list[float] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.times.append(self.fake.now)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return answer(request)


def client_for(handler: Handler, fake: FakeTime, **overrides: Any) -> LoftyClient:
    return LoftyClient(
        settings(**overrides),
        transport=httpx.MockTransport(handler),
        sleep=fake.sleep,
        clock=fake.clock,
        wall=fake.wall,
    )


def status(code: int, body: Any = None, **headers: str) -> Answer:
    def answer(request: httpx.Request) -> httpx.Response:
        if body is None or isinstance(body, bytes):
            return httpx.Response(code, content=body or b"", headers=headers)
        return httpx.Response(code, json=body, headers=headers)

    return answer


def raises(exc: Exception) -> Answer:
    def answer(request: httpx.Request) -> httpx.Response:
        raise exc

    return answer


def update(client: LoftyClient, lead_id: int = 7, body: dict[str, Any] | None = None) -> None:
    async def go() -> None:
        async with client:
            await client.update_lead(lead_id, body or {"firstName": "Bob"})

    asyncio.run(go())


# --- settings ---------------------------------------------------------------------------------


def test_access_token_is_sent_as_bearer_and_api_key_as_token() -> None:
    seen: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return ok(request)

    for env in ({"LOFTY_ACCESS_TOKEN": "abc"}, {"LOFTY_API_KEY": "xyz"}):
        s = settings_from_env({"LOFTY_API_URL": "http://127.0.0.1:8080", **env})
        update(LoftyClient(s, transport=httpx.MockTransport(handler)))
    assert seen == ["Bearer abc", "token xyz"]


def test_access_token_wins_when_both_are_set() -> None:
    s = settings_from_env({"LOFTY_ACCESS_TOKEN": "abc", "LOFTY_API_KEY": "xyz"})
    assert s.credentials.header() == "Bearer abc"


def test_default_url_is_lofty_over_https() -> None:
    s = settings_from_env({"LOFTY_API_KEY": "xyz"}, parallelism=7, rate_limit_per_minute=90)
    assert (s.base_url, s.parallelism, s.rate_limit_per_minute) == (
        "https://api.lofty.com",
        7,
        90,
    )


def test_no_credential_is_a_config_error_naming_both_variables() -> None:
    with pytest.raises(ConfigError, match="LOFTY_ACCESS_TOKEN.*LOFTY_API_KEY"):
        settings_from_env({"LOFTY_ACCESS_TOKEN": "  ", "LOFTY_API_URL": "https://x.test"})


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080", "http://127.3.4.5", "http://[::1]:80/api", "http://localhost"]
)
def test_plain_http_is_allowed_to_loopback(url: str) -> None:
    assert settings_from_env({"LOFTY_API_URL": url, "LOFTY_API_KEY": "k"}).base_url == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://example.com", "refusing plain http to example.com"),
        ("http://10.0.0.1:8080", "refusing plain http"),
        ("ftp://example.com", "not an http"),
        ("api.lofty.com", "not an http"),
        ("https://", "not an http"),
        ("https://[::1", "not an http"),
        ("https://user:pw@api.lofty.com", "must not contain credentials"),
        ("https://api.lofty.com/?key=abc", "query string"),
    ],
)
def test_unsafe_or_malformed_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        settings_from_env({"LOFTY_API_URL": url, "LOFTY_API_KEY": "k"})
    assert "pw" not in str(info.value) and "abc" not in str(info.value)


def test_a_token_with_a_line_break_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError, match="LOFTY_API_KEY contains") as info:
        settings_from_env({"LOFTY_API_KEY": f"{SECRET}\nX-Evil: 1"})
    assert SECRET not in str(info.value)


# --- the request and its answer ---------------------------------------------------------------


def test_put_sends_exactly_the_body_to_the_lead_url() -> None:
    fake = FakeTime()
    recorder = Recorder(fake, ok)
    body = {"firstName": "Zoë", "tags": ["Hot Lead"], "inquiry": {"priceMin": 1}}
    update(client_for(recorder, fake, base_url="http://127.0.0.1:9/prefix/"), 651095960136641, body)
    [request] = recorder.requests
    assert request.method == "PUT"
    assert str(request.url) == "http://127.0.0.1:9/prefix/v1.0/leads/651095960136641"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == body


@pytest.mark.parametrize("answer", [{"leadId": 8}, {"leadId": "7"}, {}, ["leadId", 7]])
def test_a_response_for_another_lead_fails(answer: Any) -> None:
    fake = FakeTime()
    recorder = Recorder(fake, status(200, answer))
    with pytest.raises(ApiError, match="leadId"):
        update(client_for(recorder, fake), 7)
    assert len(recorder.requests) == 1


def test_a_success_that_is_not_json_fails() -> None:
    fake = FakeTime()
    with pytest.raises(ApiError, match="not JSON: '<html>"):
        update(client_for(Recorder(fake, status(200, b"<html>portal</html>")), fake))


@pytest.mark.parametrize(
    ("answer", "message", "code"),
    [
        (
            status(404, {"code": 20006, "message": "LEAD_NOT_EXIST"}),
            "HTTP 404: 20006 LEAD_NOT_EXIST",
            20006,
        ),
        (
            status(400, "20012 INVALID_PARAMETER: phones too long"),
            "HTTP 400: 20012 INVALID_PARAMETER: phones too long",
            20012,
        ),
        (status(401, "Unauthorized"), "HTTP 401: Unauthorized", None),
        (status(403, b"<h1>Forbidden</h1>" + b"x" * 500), "HTTP 403: <h1>Forbidden</h1>xxx", None),
        (status(409), "HTTP 409: Conflict", None),
    ],
)
def test_other_4xx_fail_at_once_with_the_servers_message(
    answer: Answer, message: str, code: int | None
) -> None:
    fake = FakeTime()
    recorder = Recorder(fake, answer)
    with pytest.raises(ApiError) as info:
        update(client_for(recorder, fake))
    assert str(info.value).startswith(message)
    assert len(str(info.value)) < 230  # a long body is cut short
    assert (info.value.status, info.value.code) == (int(message[5:8]), code)
    assert len(recorder.requests) == 1
    assert fake.sleeps == []


def test_a_response_that_cannot_be_decoded_fails_without_retry() -> None:
    fake = FakeTime()
    recorder = Recorder(fake, raises(httpx.DecodingError("Error -3 while decompressing data")))
    with pytest.raises(ApiError, match="DecodingError: Error -3"):
        update(client_for(recorder, fake))
    assert len(recorder.requests) == 1


# --- retries ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        status(500, "Internal Server Error"),
        status(503, b""),
        status(429, {"message": "Too Many Requests"}),
        raises(httpx.RemoteProtocolError("Server disconnected without sending a response.")),
        raises(httpx.ConnectError("[Errno 111] Connection refused")),
        raises(httpx.ReadTimeout("timed out")),
    ],
)
def test_transient_failures_are_retried_until_success(
    failure: Answer,
) -> None:
    fake = FakeTime()
    recorder = Recorder(fake, failure, failure, ok)
    client = client_for(recorder, fake)
    update(client)
    assert len(recorder.requests) == 3
    assert (client.stats.requests_sent, client.stats.retries) == (3, 2)
    assert all(s > 0 for s in fake.sleeps[:2])  # backed off before each retry


def test_retry_after_is_honoured() -> None:
    fake = FakeTime()
    too_many = status(429, {"message": "Too Many Requests"}, **{"Retry-After": "7"})
    recorder = Recorder(fake, too_many, ok)
    client = client_for(recorder, fake)
    update(client)
    assert recorder.times == [0.0, 7.0]
    assert client.stats.responses_429 == 1


def test_retry_after_as_an_http_date_is_honoured() -> None:
    fake = FakeTime()
    when = email.utils.formatdate(WALL0 + 20, usegmt=True)
    recorder = Recorder(fake, status(503, b"", **{"Retry-After": when}), ok)
    update(client_for(recorder, fake))
    assert recorder.times == [0.0, 20.0]


def test_a_429_without_retry_after_waits_for_the_rate_limit_reset() -> None:
    fake = FakeTime()
    limited = status(
        429,
        {"message": "Too Many Requests"},
        **{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(WALL0) + 30)},
    )
    recorder = Recorder(fake, limited, ok)
    update(client_for(recorder, fake))
    assert 30.0 <= recorder.times[1] <= 32.0


def test_attempts_are_bounded() -> None:
    fake = FakeTime()
    recorder = Recorder(fake, status(503, {"code": 1, "message": "busy"}))
    with pytest.raises(ApiError, match=r"gave up after 3 attempts .*HTTP 503: 1 busy") as info:
        update(client_for(recorder, fake, max_attempts=3))
    assert len(recorder.requests) == 3
    assert info.value.status == 503


def test_a_lead_gives_up_by_its_deadline() -> None:
    fake = FakeTime()
    recorder = Recorder(fake, status(500, b"", **{"Retry-After": "25"}))
    with pytest.raises(ApiError, match="gave up after 3 attempts in 50 s"):
        update(client_for(recorder, fake, lead_deadline=60.0))
    assert recorder.times == [0.0, 25.0, 50.0]  # a 75 s wait would pass the deadline: stop


def test_an_unreachable_endpoint_ends_the_run_within_its_deadline() -> None:
    fake = FakeTime()
    recorder = Recorder(fake, raises(httpx.ConnectError("[Errno 111] Connection refused")))
    client = client_for(recorder, fake, max_attempts=1000)

    async def run() -> list[BaseException]:
        failures: list[BaseException] = []
        async with client:
            for lead_id in range(1, 10):
                try:
                    await client.update_lead(lead_id, {"firstName": "A"})
                except ApiError as exc:
                    failures.append(exc)
                    if isinstance(exc, ApiUnreachableError):
                        break
            sent = len(recorder.requests)
            with pytest.raises(ApiUnreachableError):  # later calls fail fast
                await client.update_lead(99, {"firstName": "A"})
            assert len(recorder.requests) == sent
        return failures

    failures = asyncio.run(run())
    assert isinstance(failures[-1], ApiUnreachableError)
    assert not isinstance(failures[0], ApiUnreachableError)  # first lead: its own deadline
    assert "gave up" in str(failures[0]) and "Connection refused" in str(failures[0])
    assert 90.0 <= fake.now <= 120.0
    assert "has not answered for" in str(failures[-1])


def test_an_answer_resets_the_unreachable_watch() -> None:
    fake = FakeTime()
    # Each lead: six connect timeouts of 10 s (60-80 s with backoff), then an answer. Without
    # the answer in between that would be over 120 s of silence and end the run.
    script = ["down"] * 6 + [500] + ["down"] * 6 + [200]

    async def handler(request: httpx.Request) -> httpx.Response:
        step = script.pop(0)
        if step == "down":
            await fake.sleep(10.0)
            raise httpx.ConnectTimeout("timed out")
        return status(step, b"")(request) if step == 500 else ok(request)

    client = client_for(handler, fake, max_attempts=7, lead_deadline=200.0)

    async def run() -> None:
        async with client:
            with pytest.raises(ApiError, match="gave up after 7 attempts") as info:
                await client.update_lead(1, {})
            assert not isinstance(info.value, ApiUnreachableError)
            await client.update_lead(2, {})

    asyncio.run(run())
    assert script == [] and fake.now > 120.0


# --- pacing -----------------------------------------------------------------------------------


class HeldServer:
    """Requests stay in flight until the test answers them, with the given rate-limit headers."""

    def __init__(self, fake: FakeTime) -> None:
        self.fake = fake
        self.arrived: list[tuple[int, float]] = []  # (leadId, fake wall time)
        self._answers: dict[int, asyncio.Future[dict[str, str]]] = {}

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        lead_id = int(request.url.path.rsplit("/", 1)[1])
        self.arrived.append((lead_id, self.fake.wall()))
        self._answers[lead_id] = asyncio.get_running_loop().create_future()
        return ok(request, **await self._answers[lead_id])

    def answer(self, lead_id: int, **headers: str) -> None:
        self._answers[lead_id].set_result(headers)

    def sent(self) -> list[int]:
        return [lead for lead, _ in self.arrived]


async def settle() -> None:
    for _ in range(100):
        await asyncio.sleep(0)


def window(remaining: int, reset: float) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": "3",
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(int(reset)),
    }


def test_pacing_counts_requests_in_flight_and_waits_for_the_reset() -> None:
    fake = FakeTime()
    server = HeldServer(fake)
    client = client_for(server, fake, parallelism=4)
    reset = WALL0 + 10

    async def run() -> None:
        async with client:
            tasks = [
                asyncio.create_task(client.update_lead(lead, {"firstName": "A"}))
                for lead in (1, 2, 3, 4, 5)
            ]
            await settle()
            assert server.sent() == [1]  # nothing known yet: one request finds out
            server.answer(1, **window(2, reset))
            await settle()
            first, second = server.sent()[1:]  # Remaining 2, and both now in flight
            server.answer(first, **window(1, reset))
            await settle()
            assert len(server.sent()) == 3  # Remaining 1, but one request is still in flight
            server.answer(second, **window(0, reset))
            await settle()
            # The window is spent: the next request waits until Reset, then goes alone.
            assert len(server.sent()) == 4
            assert server.arrived[3][1] >= reset
            assert fake.wall() >= reset
            server.answer(server.sent()[3], **window(2, reset + 10))
            await settle()
            assert sorted(server.sent()) == [1, 2, 3, 4, 5]
            server.answer(server.sent()[4], **window(1, reset + 10))
            await asyncio.gather(*tasks)

    asyncio.run(run())
    assert client.stats.requests_sent == 5


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-RateLimit-Remaining": "5", "X-RateLimit-Reset": "1700000060"}, (5, 1_700_000_060.0)),
        ({"X-RateLimit-Remaining": "5", "X-RateLimit-Reset": "30"}, (5, WALL0 + 30)),  # a delta
        ({"X-RateLimit-Remaining": "5"}, None),
        ({"X-RateLimit-Remaining": "-1", "X-RateLimit-Reset": "30"}, None),
        ({"X-RateLimit-Remaining": "5", "X-RateLimit-Reset": "inf"}, None),
        ({"X-RateLimit-Remaining": "lots", "X-RateLimit-Reset": "30"}, None),
    ],
)
def test_rate_limit_headers_are_read_defensively(
    headers: dict[str, str], expected: tuple[int, float] | None
) -> None:
    assert parse_rate_limit(httpx.Headers(headers), now=WALL0) == expected


def test_after_a_429_new_windows_are_trusted_only_a_second_past_reset() -> None:
    fake = FakeTime()

    def spent(reset: float, code: int = 200) -> Answer:
        def answer(request: httpx.Request) -> httpx.Response:
            if code == 429:
                return httpx.Response(
                    429, json={"message": "Too Many Requests"}, headers=window(0, reset)
                )
            return ok(request, **window(0, reset))

        return answer

    # A server whose true window ends after the (rounded-down) Reset it reports.
    recorder = Recorder(fake, spent(WALL0 + 10), spent(WALL0 + 10, 429), spent(WALL0 + 20))
    client = client_for(recorder, fake)

    async def run() -> None:
        async with client:
            for lead in (1, 2, 3):
                await client.update_lead(lead, {})

    asyncio.run(run())
    first, refused, retried, third = recorder.times
    assert 10.0 <= refused < 10.5  # eager: right after Reset
    assert retried >= 11.0
    assert third >= 21.0  # cautious from then on
    assert client.stats.responses_429 == 1


@pytest.mark.parametrize("headers", [window(1000, WALL0 + 60), {}], ids=["plenty", "none"])
def test_plentiful_remaining_or_no_headers_do_not_hold_requests_back(
    headers: dict[str, str],
) -> None:
    fake = FakeTime()
    server = HeldServer(fake)
    client = client_for(server, fake, parallelism=4)

    async def run() -> None:
        async with client:
            tasks = [asyncio.create_task(client.update_lead(lead, {})) for lead in range(1, 7)]
            await settle()
            server.answer(1, **headers)
            await settle()
            assert server.sent() == [1, 2, 3, 4, 5]  # parallelism 4 in flight at once
            for lead in range(2, 7):
                await settle()
                server.answer(lead, **headers)
            await asyncio.gather(*tasks)

    asyncio.run(run())
    assert fake.sleeps == []


def test_rate_limit_ceiling_spaces_requests() -> None:
    fake = FakeTime()
    recorder = Recorder(fake, ok)
    client = client_for(recorder, fake, rate_limit_per_minute=120, parallelism=3)

    async def run() -> None:
        async with client:
            await asyncio.gather(*(client.update_lead(lead, {}) for lead in range(1, 6)))

    asyncio.run(run())
    assert len(recorder.times) == 5
    gaps = [b - a for a, b in zip(recorder.times, recorder.times[1:], strict=False)]
    assert all(gap >= 0.5 - 1e-9 for gap in gaps), recorder.times


# --- secrecy ----------------------------------------------------------------------------------


def test_the_secret_never_shows_in_reprs_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    s = settings()
    assert SECRET not in repr(s) and SECRET not in str(s) and SECRET not in str(s.credentials)
    fake = FakeTime()

    def echo(request: httpx.Request) -> httpx.Response:  # a proxy that echoes our headers back
        return httpx.Response(400, json=f"bad request; headers were {dict(request.headers)}")

    errors: list[str] = []
    caplog.set_level(logging.DEBUG)
    for answer in (
        echo,
        status(500, f"Authorization: Bearer {SECRET}"),
        raises(httpx.ConnectError(f"failed with {SECRET}")),
    ):
        client = client_for(Recorder(fake, answer), fake, max_attempts=2)
        assert SECRET not in repr(client)
        with pytest.raises(ApiError) as info:
            update(client)
        errors.append(str(info.value))
        errors.append(repr(info.value))
    assert "***" in errors[0]
    assert not [e for e in errors if SECRET in e], errors
    assert not [r for r in caplog.records if SECRET in r.getMessage()]
    assert not [r for r in caplog.records if r.name.startswith(("httpx", "httpcore"))]


# --- a real socket ----------------------------------------------------------------------------


class _Lofty(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    ports: list[int] = []

    def do_PUT(self) -> None:  # noqa: N802 -- http.server's naming
        self.rfile.read(int(self.headers["Content-Length"]))
        self.ports.append(self.client_address[1])
        body = json.dumps({"leadId": int(self.path.rsplit("/", 1)[1])}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def loopback_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Lofty)
    _Lofty.ports = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_connections_are_pooled_and_kept_alive(loopback_server: str) -> None:
    s = settings_from_env({"LOFTY_API_URL": loopback_server, "LOFTY_API_KEY": "k"}, parallelism=2)

    async def run() -> None:
        async with LoftyClient(s) as client:
            await asyncio.gather(*(client.update_lead(lead, {"x": lead}) for lead in range(1, 21)))

    asyncio.run(run())
    assert len(_Lofty.ports) == 20
    assert len(set(_Lofty.ports)) <= 2  # 20 requests over at most `parallelism` connections

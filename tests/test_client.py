"""The Lofty client: settings, proxies, the PUT and GETs it sends, error handling, retries,
pacing, bounds, secrecy.

HTTP is faked at the transport (httpx.MockTransport) and time by a fake clock whose sleep only
advances it, so retry and pacing waits cost nothing. Real loopback servers show connection
pooling, a proxy that must receive nothing, and a misbehaving server that cannot stall a run.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import heapq
import http.server
import importlib.util
import itertools
import json
import logging
import re
import socket
import socketserver
import threading
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from reconciler.client import (
    ClientSettings,
    Credentials,
    LoftyClient,
    settings_from_env,
)
from reconciler.errors import (
    ApiError,
    ApiUnreachableError,
    AuthError,
    ConfigError,
    LeadNotFoundError,
)
from reconciler.pacing import read_rate_limit, read_retry_after

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


def client_for(
    handler: Handler,
    fake: FakeTime,
    notice: Callable[[str], None] | None = None,
    **overrides: Any,
) -> LoftyClient:
    return LoftyClient(
        settings(**overrides),
        transport=httpx.MockTransport(handler),
        sleep=fake.sleep,
        clock=fake.clock,
        wall=fake.wall,
        notice=notice,
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


@pytest.mark.parametrize("answer", [{"leadId": 7}, {"leadId": "7"}, {"leadId": 7, "extra": [1]}])
def test_a_response_naming_the_lead_is_a_success_even_as_a_numeric_string(answer: Any) -> None:
    fake = FakeTime()
    recorder = Recorder(fake, status(200, answer))
    update(client_for(recorder, fake), 7)
    assert len(recorder.requests) == 1


@pytest.mark.parametrize(
    "answer",
    [{"leadId": 8}, {"leadId": "8"}, {"leadId": "7x"}, {"leadId": True}, {}, ["leadId", 7]],
)
def test_a_response_for_another_lead_fails(answer: Any) -> None:
    fake = FakeTime()
    recorder = Recorder(fake, status(200, answer))
    with pytest.raises(ApiError, match="leadId"):
        update(client_for(recorder, fake), 7)
    assert len(recorder.requests) == 1


@pytest.mark.parametrize(
    ("answer", "kind", "message", "code"),
    [
        (
            {"code": 20012, "message": "INVALID_PARAMETER: phones"},
            ApiError,
            "HTTP 200 but Lofty answered: 20012 INVALID_PARAMETER: phones",
            20012,
        ),
        (
            {"code": "20006", "message": "LEAD_NOT_EXIST"},
            LeadNotFoundError,
            "HTTP 200 but Lofty answered: 20006 LEAD_NOT_EXIST",
            20006,
        ),
        ({"message": "Too busy"}, ApiError, "HTTP 200 but Lofty answered: Too busy", None),
    ],
)
def test_a_200_whose_body_is_an_error_object_fails_with_the_servers_message(
    answer: Any, kind: type[ApiError], message: str, code: int | None
) -> None:
    fake = FakeTime()
    recorder = Recorder(fake, status(200, answer))
    with pytest.raises(ApiError) as info:
        update(client_for(recorder, fake), 7)
    assert type(info.value) is kind
    assert str(info.value) == message
    assert (info.value.status, info.value.code) == (200, code)
    assert len(recorder.requests) == 1


def test_a_success_that_is_not_json_fails() -> None:
    fake = FakeTime()
    with pytest.raises(ApiError, match="not JSON: '<html>"):
        update(client_for(Recorder(fake, status(200, b"<html>portal</html>")), fake))


@pytest.mark.parametrize(
    ("answer", "kind", "message", "code"),
    [
        (
            status(404, {"code": 20006, "message": "LEAD_NOT_EXIST"}),
            LeadNotFoundError,
            "HTTP 404: 20006 LEAD_NOT_EXIST",
            20006,
        ),
        (status(404, b""), LeadNotFoundError, "HTTP 404: Not Found", None),
        (
            status(400, "20006 LEAD_NOT_EXIST"),
            LeadNotFoundError,
            "HTTP 400: 20006 LEAD_NOT_EXIST",
            20006,
        ),
        (
            status(400, "20012 INVALID_PARAMETER: phones too long"),
            ApiError,
            "HTTP 400: 20012 INVALID_PARAMETER: phones too long",
            20012,
        ),
        (
            status(400, b"<h1>Bad</h1>" + b"x" * 500),
            ApiError,
            "HTTP 400: <h1>Bad</h1>" + "x" * 187 + "…",
            None,
        ),
        (status(409), ApiError, "HTTP 409: Conflict", None),
    ],
)
def test_other_4xx_fail_at_once_with_the_servers_message(
    answer: Answer, kind: type[ApiError], message: str, code: int | None
) -> None:
    fake = FakeTime()
    recorder = Recorder(fake, answer)
    with pytest.raises(ApiError) as info:
        update(client_for(recorder, fake))
    assert type(info.value) is kind
    assert str(info.value) == message  # a long body is cut short
    assert (info.value.status, info.value.code) == (int(message[5:8]), code)
    assert len(recorder.requests) == 1
    assert fake.sleeps == []


@pytest.mark.parametrize(
    ("env", "answer", "message"),
    [
        (
            {"LOFTY_ACCESS_TOKEN": SECRET},
            status(401, "Unauthorized"),
            "HTTP 401: Unauthorized; Lofty refused the credential in LOFTY_ACCESS_TOKEN. ",
        ),
        (
            {"LOFTY_API_KEY": SECRET},
            status(403, b"<h1>Forbidden</h1>" + b"x" * 500),
            "HTTP 403: <h1>Forbidden</h1>xxx",
        ),
    ],
)
def test_401_and_403_are_auth_errors_with_a_hint_on_the_scheme(
    env: dict[str, str], answer: Answer, message: str
) -> None:
    fake = FakeTime()
    recorder = Recorder(fake, answer)
    client = LoftyClient(
        settings_from_env({"LOFTY_API_URL": "http://127.0.0.1:9", **env}),
        transport=httpx.MockTransport(recorder),
        sleep=fake.sleep,
        clock=fake.clock,
        wall=fake.wall,
    )
    with pytest.raises(AuthError) as info:
        update(client)
    text = str(info.value)
    assert text.startswith(message)
    assert text.endswith(
        "LOFTY_ACCESS_TOKEN is sent as `Authorization: Bearer …`, LOFTY_API_KEY as "
        "`Authorization: token …`; check which one you set and that it is current"
    )
    assert len(text.partition("; Lofty refused")[0]) <= len("HTTP 403: ") + 200  # cut short
    assert info.value.status == int(message[5:8])
    assert len(recorder.requests) == 1 and fake.sleeps == []


def test_after_a_401_every_later_call_fails_at_once_without_a_request() -> None:
    fake = FakeTime()
    recorder = Recorder(fake, status(401, {"message": "invalid token"}), ok)
    client = client_for(recorder, fake, parallelism=4)

    async def run() -> list[BaseException | None]:
        async with client:
            outcomes = await asyncio.gather(
                *(client.update_lead(lead, {}) for lead in range(1, 6)), return_exceptions=True
            )
            with pytest.raises(AuthError, match="invalid token"):
                await client.get_lead(9)
            with pytest.raises(AuthError):
                await client.check_access()
            return list(outcomes)

    outcomes = asyncio.run(run())
    # The first request goes alone (nothing is known of the rate window yet); its 401 ends it.
    assert len(recorder.requests) == 1
    assert all(isinstance(o, AuthError) and "invalid token" in str(o) for o in outcomes)


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
    # Ends once the next attempt (up to attempt_deadline, 30 s) could pass 120 s of silence.
    assert 80.0 <= fake.now <= 120.0
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
    ("headers", "expected", "problem"),
    [
        ({"X-RateLimit-Remaining": "5", "X-RateLimit-Reset": "1700000060"}, (5, WALL0 + 60), None),
        (
            {"X-RateLimit-Remaining": "5", "X-RateLimit-Reset": "1700000030500"},
            (5, WALL0 + 30.5),
            None,
        ),
        ({"X-RateLimit-Remaining": "5", "X-RateLimit-Reset": "30"}, (5, WALL0 + 30), None),
        ({"X-RateLimit-Remaining": "5", "X-RateLimit-Reset": "1699999990"}, (5, WALL0 - 10), None),
        # The vendor's own 429 example: a delta, and further than a rate window.
        # The vendor's own 429 example: a delta, too far for seconds, so milliseconds.
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "21000"}, (0, WALL0 + 21), "millis"),
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "90000"}, (0, WALL0 + 65), "further"),
        (
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "9999999999"},
            (0, WALL0 + 65),
            "further",
        ),
        (
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "9999999999999"},
            (0, WALL0 + 65),
            "further",
        ),
        ({"X-RateLimit-Remaining": "5"}, None, None),
        ({"X-RateLimit-Remaining": "-1", "X-RateLimit-Reset": "30"}, None, "not a count"),
        ({"X-RateLimit-Remaining": "lots", "X-RateLimit-Reset": "30"}, None, "not a count"),
        ({"X-RateLimit-Remaining": "5", "X-RateLimit-Reset": "inf"}, None, "not a time"),
        ({"X-RateLimit-Remaining": "5", "X-RateLimit-Reset": "-3"}, None, "not a time"),
        ({"X-RateLimit-Remaining": "5", "X-RateLimit-Reset": "\x1b[31m"}, None, "not a time"),
    ],
)
def test_rate_limit_headers_are_read_defensively(
    headers: dict[str, str], expected: tuple[int, float] | None, problem: str | None
) -> None:
    window, said = read_rate_limit(httpx.Headers(headers), now=WALL0, max_wait=65.0)
    assert (None if window is None else (window.remaining, window.reset)) == expected
    if problem is None:
        assert said is None
    else:
        assert said is not None and problem in said.action
        assert said.header.startswith("X-RateLimit-") and said.value in headers.values()


@pytest.mark.parametrize(
    ("value", "seconds", "problem"),
    [
        ("7", 7.0, None),
        ("0", 0.0, None),
        ("-5", 0.0, None),
        (email.utils.formatdate(WALL0 + 20, usegmt=True), 20.0, None),
        ("999999", 65.0, "more than a rate window"),
        ("inf", 65.0, "more than a rate window"),
        (email.utils.formatdate(WALL0 + 86_400, usegmt=True), 65.0, "more than a rate window"),
        ("nan", 0.0, "not a number"),
        ("soon", 0.0, "neither"),
    ],
)
def test_retry_after_is_read_defensively(value: str, seconds: float, problem: str | None) -> None:
    got, said = read_retry_after(value, now=WALL0, max_wait=65.0)
    assert got == pytest.approx(seconds)
    assert (said is None) == (problem is None)
    if said is not None:
        assert problem is not None and problem in said.action and said.header == "Retry-After"


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


# --- every wait bounded -----------------------------------------------------------------------


def test_a_reset_far_in_the_future_waits_at_most_max_wait_and_is_said_once() -> None:
    fake = FakeTime()
    spent = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "9999999999"}
    recorder = Recorder(fake, lambda request: ok(request, **spent))
    notices: list[str] = []
    client = client_for(recorder, fake, notice=notices.append)

    async def run() -> None:
        async with client:
            for lead in (1, 2, 3):
                await client.update_lead(lead, {})

    asyncio.run(run())
    assert fake.sleeps and max(fake.sleeps) <= 65.0
    # Not the year 2286: 65 s (then the pacer's 0.05 s margin past the capped Reset).
    assert [round(t, 2) for t in recorder.times] == [0.0, 65.05, 130.1]
    assert notices == [
        "Lofty's X-RateLimit-Reset header '9999999999' is further away than a rate window; "
        "waiting at most 65 s at a time"
    ]


@pytest.mark.parametrize(
    ("headers", "retried_at", "said"),
    [
        ({"Retry-After": "999999"}, 65.0, "Retry-After header '999999' asks for more than"),
        ({"Retry-After": "Fri, 31 Dec 2100 23:59:59 GMT"}, 65.0, "Retry-After header 'Fri, 31"),
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "90000"}, 65.0, "is further away"),
        # The vendor's own example.
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "21000"}, 21.0, "as milliseconds"),
        (
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(WALL0 + 30) * 1000)},
            30.0,
            "",
        ),
    ],
)
def test_a_429_never_waits_longer_than_max_wait(
    headers: dict[str, str], retried_at: float, said: str
) -> None:
    fake = FakeTime()
    recorder = Recorder(fake, status(429, {"message": "Too Many Requests"}, **headers), ok)
    notices: list[str] = []
    update(client_for(recorder, fake, notice=notices.append, lead_deadline=120.0))
    assert retried_at <= recorder.times[1] <= retried_at + 1.0  # + the pacer's margin
    assert all(s <= 65.0 for s in fake.sleeps)
    assert len(notices) == (1 if said else 0) and said in "".join(notices)


def test_a_429_asking_for_longer_than_the_lead_has_left_gives_up_at_once() -> None:
    fake = FakeTime()
    too_many = status(429, {"message": "Too Many Requests"}, **{"Retry-After": "999999"})
    recorder = Recorder(fake, too_many, ok)
    client = client_for(recorder, fake, lead_deadline=60.0)

    async def run() -> None:
        async with client:
            with pytest.raises(ApiError, match="gave up after 1 attempt in 0 s; last: HTTP 429"):
                await client.update_lead(1, {})
            await client.update_lead(2, {})  # everyone was held off, for at most 65 s

    asyncio.run(run())
    assert recorder.times == [0.0, 65.0]


def test_implausible_headers_are_said_once_per_header_and_logged_without_a_notice(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeTime()
    hostile = status(503, b"", **{"Retry-After": "\x1b[2Jsoon"})
    recorder = Recorder(fake, hostile, hostile, hostile, ok)
    caplog.set_level(logging.WARNING, logger="reconciler.client")
    update(client_for(recorder, fake, max_attempts=4))
    [record] = [r for r in caplog.records if "Retry-After" in r.getMessage()]
    assert record.getMessage() == (
        "Lofty's Retry-After header '\\u001b[2Jsoon' is neither a number of seconds nor an "
        "HTTP date; ignored"
    )


def test_an_attempt_has_a_total_deadline() -> None:
    fake = FakeTime()

    async def never(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(3600)  # real time: only the attempt deadline can end this
        raise AssertionError("unreachable")

    client = client_for(never, fake, attempt_deadline=0.05, max_attempts=2)
    with pytest.raises(ApiError, match=r"gave up after 2 attempts .*no complete answer within"):
        update(client)
    assert client.stats.requests_sent == 2


# --- every read capped ------------------------------------------------------------------------


def test_a_success_body_over_the_cap_fails_the_lead_without_being_read() -> None:
    fake = FakeTime()
    huge = {"leadId": 7, "pad": "x" * (1024 * 1024)}
    recorder = Recorder(fake, status(200, huge))
    with pytest.raises(ApiError, match=r"^HTTP 200 but the response is larger than 1 MiB$"):
        update(client_for(recorder, fake))
    assert len(recorder.requests) == 1


def test_a_streamed_body_is_read_only_up_to_the_cap() -> None:
    fake = FakeTime()
    pulled: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        while True:
            pulled.append(1)
            yield b" " * 1000

    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=endless())

    with pytest.raises(ApiError, match="larger than 10000 B"):
        update(client_for(handler, fake, max_body_bytes=10_000))
    assert len(pulled) <= 11


@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"leadId": 7' + b"9" * 5000 + b"}"])
def test_a_pathological_json_success_is_a_clean_failure(body: bytes) -> None:
    fake = FakeTime()
    with pytest.raises(ApiError, match="not JSON"):
        update(client_for(Recorder(fake, status(200, body)), fake))


# --- secrecy of server text -------------------------------------------------------------------

LONG_SECRET = "lofty-AT-7f3a9c1e5b2d4f6a8c0e2b4d6f8a1c3e5b7d9f0a2c4"  # 52 characters


def runs_of(text: str, length: int = 8) -> set[str]:
    return {text[i : i + length] for i in range(len(text) - length + 1)}


def leaks(secret: str, *texts: str) -> list[str]:
    return [run for run in runs_of(secret) for text in texts if run in text]


@pytest.mark.parametrize("code", [500, 401])
def test_an_echoed_header_never_leaks_wherever_the_cut_falls(code: int) -> None:
    for padding in range(260):  # the secret straddles the 200-character cut at every offset
        fake = FakeTime()
        echo = "p" * padding + f"Authorization: Bearer {LONG_SECRET}; more text after"
        for body in (echo.encode(), {"code": 1, "message": echo}):
            client = client_for(
                Recorder(fake, status(code, body)),
                fake,
                credentials=Credentials("Bearer", LONG_SECRET),
                max_attempts=1,
            )
            with pytest.raises(ApiError) as info:
                update(client)
            assert not leaks(LONG_SECRET, str(info.value), repr(info.value)), (padding, body)


def base64_runs(secret: str, blob: str, start: int) -> str:
    """The characters of ``blob`` (base64) made only of the secret's bytes, at byte ``start``."""
    first = -(-8 * start // 6)
    end = 8 * (start + len(secret)) // 6
    return blob[first:end]


def test_base64_and_url_encoded_echoes_are_scrubbed() -> None:
    secret = "k3y/With+Odd=Chars%and~more-1234567890"
    header = f"token {secret}".encode()
    texts: list[str] = []
    forms: list[str] = [urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)]
    for padding in range(6):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            blob = encode(b"p" * padding + header).decode()
            forms.append(base64_runs(secret, blob, padding + len("token ")))
            texts.append(f"proxy saw Proxy-Authorization: Basic {blob}")
            blob = encode(b"p" * padding + secret.encode()).decode()
            forms.append(base64_runs(secret, blob, padding))
            texts.append(f"echo {blob}")
    texts += [f"GET /x?key={forms[0]}", f"GET /x?key={forms[1]}"]
    for text in texts:
        fake = FakeTime()
        client = client_for(
            Recorder(fake, status(400, {"message": text})),
            fake,
            credentials=Credentials("token", secret),
        )
        with pytest.raises(ApiError) as info:
            update(client)
        shown = str(info.value)
        assert "***" in shown
        assert not [form for form in forms if leaks(form, shown)], shown
        assert not leaks(secret, shown)


def test_server_text_reaches_messages_escaped() -> None:
    fake = FakeTime()
    body = "\x1b[31mred\x1b[0m\n::error title=pwn::injected\x1b]0;TITLE\x07\u2028end"
    with pytest.raises(ApiError) as info:
        update(client_for(Recorder(fake, status(400, body)), fake))
    assert str(info.value) == (
        "HTTP 400: \\u001b[31mred\\u001b[0m\\u000a::error title=pwn::injected"
        "\\u001b]0;TITLE\\u0007\\u2028end"
    )


# --- reading leads ----------------------------------------------------------------------------

LIVE = {
    "leadId": 7,
    "firstName": "Jane",
    "tags": [{"tagName": "Hot", "tagId": 1}],
    "someFutureKey": {"nested": True},
}


def get(client: LoftyClient, lead_id: int = 7) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        async with client:
            return await client.get_lead(lead_id)

    return asyncio.run(go())


def test_get_lead_returns_the_raw_lead_unknown_keys_included() -> None:
    fake = FakeTime()
    recorder = Recorder(fake, status(200, {"lead": LIVE, "requestId": "x"}))
    client = client_for(recorder, fake)
    assert get(client) == LIVE
    [request] = recorder.requests
    assert (request.method, str(request.url)) == ("GET", "http://127.0.0.1:9/v1.0/leads/7")
    assert request.content == b""
    assert client.stats.requests_by_method == {"GET": 1}


@pytest.mark.parametrize(
    ("answer", "kind", "message"),
    [
        (
            status(404, "20006 LEAD_NOT_EXIST"),
            LeadNotFoundError,
            "HTTP 404: 20006 LEAD_NOT_EXIST",
        ),
        (
            status(200, LIVE),
            ApiError,
            "HTTP 200 but the response holds no `lead` object (got nothing)",
        ),
        (
            status(200, {"lead": [LIVE]}),
            ApiError,
            "HTTP 200 but the response holds no `lead` object (got a list)",
        ),
        (
            status(200, "ok"),
            ApiError,
            "HTTP 200 but the response holds no `lead` object (got a string)",
        ),
        (
            status(200, {"lead": {**LIVE, "leadId": 8}}),
            ApiError,
            "HTTP 200 but the lead returned has leadId 8, not 7",
        ),
        (status(200, b"<html>"), ApiError, "HTTP 200 but the response is not JSON: '<html>'"),
    ],
)
def test_get_lead_failures_are_clear(answer: Answer, kind: type[ApiError], message: str) -> None:
    fake = FakeTime()
    with pytest.raises(ApiError) as info:
        get(client_for(Recorder(fake, answer), fake))
    assert type(info.value) is kind
    assert str(info.value) == message


def test_get_lead_is_retried_and_capped_like_a_put() -> None:
    fake = FakeTime()
    recorder = Recorder(fake, status(503, b""), status(200, {"lead": {"leadId": "7"}}))
    client = client_for(recorder, fake)
    assert get(client) == {"leadId": "7"}
    assert client.stats.retries == 1
    fake = FakeTime()
    big = Recorder(fake, status(200, {"lead": {"leadId": 7, "notes": "x" * 2000}}))
    with pytest.raises(ApiError, match="larger than 1000 B"):
        get(client_for(big, fake, max_body_bytes=1000))


class Pages:
    """A fake list endpoint over ``count`` leads: pages of at most ``short`` leads each."""

    def __init__(
        self,
        fake: FakeTime,
        count: int,
        *,
        short: int = 100,
        scroll: bool = False,
        meta_key: str = "_metadata",
        total: bool = True,
    ) -> None:
        self.fake = fake
        self.leads = [
            {"leadId": 1000 + n, "firstName": f"N{n}", "unknownKey": n} for n in range(count)
        ]
        self.short, self.scroll, self.meta_key, self.total = short, scroll, meta_key, total
        self.queries: list[dict[str, str]] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        query = dict(request.url.params)
        self.queries.append(query)
        limit = int(query["limit"])
        start = int(query["scrollId"][1:]) if "scrollId" in query else int(query.get("offset", "0"))
        page = self.leads[start : start + min(limit, self.short)]
        meta: dict[str, Any] = {"collection": "lead", "limit": limit, "offset": start}
        if self.total:
            meta["total"] = len(self.leads)
        if self.scroll and "offset" not in query:  # as Lofty: an offset asks for a live page
            meta["scrollId"] = f"s{start + len(page)}"
        return httpx.Response(200, json={"leads": page, self.meta_key: meta, "extra": 1})


def listed(client: LoftyClient, filters: dict[str, str] | None = None, **kw: Any) -> list[Any]:
    async def go() -> list[Any]:
        async with client:
            return [lead async for lead in client.list_leads(filters or {}, **kw)]

    return asyncio.run(go())


def test_list_leads_pages_by_offset_when_no_scroll_is_given_and_never_assumes_a_full_page() -> None:
    fake = FakeTime()
    server = Pages(fake, 250, short=60)
    client = client_for(server, fake)
    leads = listed(
        client,
        {"stage": "New", "anyTags": "Hot,Warm", "assignedUserId": "42"},
        return_fields=["firstName", "tags"],
    )
    assert leads == server.leads  # raw, unknown keys and all
    # The first page names no place, so that a server that scrolls can start a scroll.
    assert [q.get("offset") for q in server.queries] == [None, "60", "120", "180", "240"]
    assert server.queries[0] == {
        "stage": "New",
        "anyTags": "Hot,Warm",
        "assignedUserId": "42",
        "limit": "100",
        "returnFields": "firstName,tags,leadId",
    }
    assert client.stats.requests_sent == 5 and client.stats.requests_by_method == {"GET": 5}


def test_list_leads_follows_scroll_ids_under_get_metadata() -> None:
    fake = FakeTime()
    server = Pages(fake, 120, scroll=True, meta_key="get_metadata", short=50)
    leads = listed(client_for(server, fake), page_size=50)
    assert leads == server.leads
    assert [q.get("scrollId") for q in server.queries] == [None, "s50", "s100"]
    assert all(q["limit"] == "50" for q in server.queries)


def test_without_a_total_the_list_ends_at_an_empty_page() -> None:
    fake = FakeTime()
    server = Pages(fake, 130, short=40, total=False)
    assert listed(client_for(server, fake)) == server.leads
    assert [q.get("offset") for q in server.queries] == [None, "40", "80", "120", "130"]


def test_an_empty_result_and_a_missing_list_with_total_zero_are_empty() -> None:
    fake = FakeTime()
    for body in ({"leads": [], "_metadata": {"total": 0}}, {"_metadata": {"total": 0}}):
        assert listed(client_for(Recorder(fake, status(200, body)), fake)) == []


@pytest.mark.parametrize(
    ("meta", "asked"),
    [({"total": 500, "scrollId": "A"}, "by a scrollId that came back again"), ({}, "at offset 2")],
)
def test_a_page_that_repeats_itself_is_an_error_not_a_hang(
    meta: dict[str, Any], asked: str
) -> None:
    fake = FakeTime()
    same = {"leads": [{"leadId": 1}, {"leadId": 2}], "_metadata": meta}
    recorder = Recorder(fake, status(200, same))
    got: list[Any] = []

    async def go() -> None:
        async with client_for(recorder, fake) as client:
            async for lead in client.list_leads({}):
                got.append(lead)

    with pytest.raises(ApiError) as info:
        asyncio.run(go())
    assert str(info.value) == (
        f"page 2 of the lead list ({asked}) holds only leads already read: Lofty is not moving "
        "on; stopping rather than asking forever"
    )
    assert got == same["leads"] and len(recorder.requests) == 2


def test_a_list_that_never_ends_is_an_error_after_a_bounded_number_of_pages() -> None:
    fake = FakeTime()
    counter = itertools.count(1)

    def trickle(request: httpx.Request) -> httpx.Response:  # one new lead a page, for ever
        return httpx.Response(
            200, json={"leads": [{"leadId": next(counter)}], "_metadata": {"total": 1000}}
        )

    recorder = Recorder(fake, trickle)
    with pytest.raises(ApiError, match="has not ended after 50 pages and 50 leads"):
        listed(client_for(recorder, fake))
    assert len(recorder.requests) == 50  # 4 x the 10 pages total/limit needs, + 10


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"leads": {"leadId": 1}}, "page 1 of the lead list has no list of lead objects"),
        ({"leads": [1, 2]}, "page 1 of the lead list has no list of lead objects"),
        ({"leads": [{"firstName": "x"}]}, "page 1 of the lead list holds a lead without a numeric"),
        ([], "page 1 of the lead list is a list, not an object"),
        ({"code": 20001, "message": "LIMIT_NOT_VALID"}, "HTTP 200 but Lofty answered: 20001"),
    ],
)
def test_a_malformed_page_is_a_clear_error(body: Any, message: str) -> None:
    fake = FakeTime()
    with pytest.raises(ApiError, match=re.escape(message)):
        listed(client_for(Recorder(fake, status(200, body)), fake))


@pytest.mark.parametrize(
    ("filters", "kw", "message"),
    [
        (
            {"email": "a@b.c"},
            {},
            "cannot list leads by email; the filters are stage, source, "
            "segments, anyTags, allTags, assignedUserId",
        ),
        ({"assignedUserId": "me"}, {}, "assignedUserId filter must be a user id"),
        ({}, {"page_size": 101}, "page size must be from 1 to 100"),
        ({}, {"page_size": 0}, "page size must be from 1 to 100"),
        ({}, {"return_fields": "firstName"}, "return_fields must be a list"),
        ({}, {"return_fields": ["a,b"]}, "return_fields must be a list"),
    ],
)
def test_list_arguments_are_checked_before_any_request(
    filters: dict[str, str], kw: dict[str, Any], message: str
) -> None:
    fake = FakeTime()
    recorder = Recorder(fake, ok)
    client = client_for(recorder, fake)
    with pytest.raises(ConfigError, match=re.escape(message)):
        client.list_leads(filters, **kw)
    assert recorder.requests == []


# --- the early access check -------------------------------------------------------------------


def check(client: LoftyClient) -> None:
    async def go() -> None:
        async with client:
            await client.check_access()

    asyncio.run(go())


def test_check_access_makes_one_cheap_request() -> None:
    fake = FakeTime()
    recorder = Recorder(fake, status(200, {"leads": [LIVE], "_metadata": {"total": 9}}))
    check(client_for(recorder, fake))
    [request] = recorder.requests
    assert (request.method, request.url.path, dict(request.url.params)) == (
        "GET",
        "/v1.0/leads",
        {"limit": "1"},
    )


@pytest.mark.parametrize(
    ("base_url", "answer", "kind", "message"),
    [
        (
            "http://127.0.0.1:9",
            status(401, "Unauthorized"),
            AuthError,
            "HTTP 401: Unauthorized; Lofty refused the credential in LOFTY_ACCESS_TOKEN. "
            "LOFTY_ACCESS_TOKEN is sent as `Authorization: Bearer …`",
        ),
        (
            "http://127.0.0.1:9/v1.0",
            status(404, b"Not Found"),
            ConfigError,
            "LOFTY_API_URL looks wrong: GET http://127.0.0.1:9/v1.0/v1.0/leads answered HTTP 404: "
            "Not Found. LOFTY_API_URL should be the host only, e.g. https://api.lofty.com",
        ),
        (
            "http://127.0.0.1:9/v1.0/",
            status(200, b"<html>portal</html>"),
            ConfigError,
            "LOFTY_API_URL looks wrong: GET http://127.0.0.1:9/v1.0/v1.0/leads answered with "
            "something that is not JSON: '<html>portal</html>'. LOFTY_API_URL should be the host "
            "only, e.g. https://api.lofty.com",
        ),
        (
            "http://127.0.0.1:9/api",
            status(404, b""),
            ConfigError,
            "LOFTY_API_URL looks wrong: GET http://127.0.0.1:9/api/v1.0/leads answered HTTP 404: "
            "Not Found. Set it to the address of the Lofty API, e.g. https://api.lofty.com",
        ),
        (
            "http://127.0.0.1:9",
            status(301, b"", location="https://www.lofty.com/"),
            ConfigError,
            "LOFTY_API_URL looks wrong: GET http://127.0.0.1:9/v1.0/leads was redirected to "
            "https://www.lofty.com/.",
        ),
    ],
)
def test_check_access_says_what_is_wrong(
    base_url: str, answer: Answer, kind: type[Exception], message: str
) -> None:
    fake = FakeTime()
    with pytest.raises(kind) as info:
        check(client_for(Recorder(fake, answer), fake, base_url=base_url))
    assert str(info.value).startswith(message)


# --- proxies ----------------------------------------------------------------------------------


class RecordingProxy:
    """A loopback "proxy" that records every byte it receives and answers 502."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.received = bytearray()
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            with conn:
                conn.settimeout(2)
                try:
                    while b"\r\n\r\n" not in self.received:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        self.received += chunk
                    conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def proxy() -> Iterator[RecordingProxy]:
    recording = RecordingProxy()
    yield recording
    recording.close()


def test_a_loopback_api_never_goes_through_a_proxy(
    loopback_server: str, proxy: RecordingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxies = {name: proxy.url for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY")}
    for name, value in proxies.items():  # where httpx itself would look
        monkeypatch.setenv(name, value)
    s = settings_from_env(
        {"LOFTY_API_URL": loopback_server, "LOFTY_ACCESS_TOKEN": SECRET, **proxies}
    )
    assert s.proxy is None

    async def run() -> None:
        async with LoftyClient(s) as client:
            await client.update_lead(5, {"firstName": "A"})

    asyncio.run(run())
    assert len(_Lofty.ports) == 1
    assert proxy.connections == 0 and bytes(proxy.received) == b""


def test_an_https_api_goes_through_the_proxy_inside_a_tunnel(proxy: RecordingProxy) -> None:
    env = {"LOFTY_API_URL": "https://api.lofty.test", "LOFTY_ACCESS_TOKEN": SECRET}
    s = settings_from_env({**env, "HTTPS_PROXY": proxy.url})
    assert s.proxy == proxy.url and proxy.url not in repr(s)

    async def run() -> None:
        async with LoftyClient(replace(s, max_attempts=1)) as client:
            await client.update_lead(5, {"firstName": "A"})

    with pytest.raises(ApiError, match="the proxy failed: ProxyError") as info:
        asyncio.run(run())
    assert bytes(proxy.received).startswith(b"CONNECT api.lofty.test:443 HTTP/1.1\r\n")
    assert SECRET.encode() not in proxy.received and b"uthorization" not in proxy.received
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    ("env", "proxied"),
    [
        ({"HTTPS_PROXY": "http://proxy.test:3128"}, True),
        ({"ALL_PROXY": "http://proxy.test:3128"}, True),
        ({"HTTP_PROXY": "http://proxy.test:3128"}, False),  # for http URLs only
        ({"HTTPS_PROXY": "http://proxy.test:3128", "NO_PROXY": "lofty.test"}, False),
        ({"HTTPS_PROXY": "http://proxy.test:3128", "no_proxy": "x.test, .lofty.test"}, False),
        ({"HTTPS_PROXY": "http://proxy.test:3128", "NO_PROXY": "*"}, False),
        ({"HTTPS_PROXY": "http://proxy.test:3128", "NO_PROXY": "other.test"}, True),
    ],
)
def test_proxy_variables_are_honoured(env: dict[str, str], proxied: bool) -> None:
    s = settings_from_env({"LOFTY_API_URL": "https://api.lofty.test", "LOFTY_API_KEY": "k", **env})
    assert s.proxy == ("http://proxy.test:3128" if proxied else None)


def test_a_proxy_that_would_see_the_credential_in_clear_is_refused() -> None:
    with pytest.raises(
        ConfigError,
        match="refusing to send the credential over plain http through the proxy http://10.1.2.3",
    ):
        settings(base_url="http://127.0.0.1:8080", proxy="http://10.1.2.3:3128")
    assert settings(base_url="http://127.0.0.1:8080", proxy="http://127.0.0.1:3128").proxy


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "HTTPS_PROXY",
            "socks5://user:pw@proxy.test:1080",
            "HTTPS_PROXY (socks5://proxy.test) is a SOCKS proxy, which needs the socksio package",
        ),
        (
            "https_proxy",
            "http://user:pw@proxy.test:99999",
            "https_proxy (http://proxy.test) has a port that is not a number from 1 to 65535",
        ),
        ("ALL_PROXY", "http://proxy.test:port-pw", "ALL_PROXY (http://proxy.test) has a port"),
        ("ALL_PROXY", "user:pw@proxy.test:3128", "ALL_PROXY is not a proxy URL this tool can use"),
        ("HTTPS_PROXY", "garbage pw", "HTTPS_PROXY is not a proxy URL this tool can use"),
        ("HTTPS_PROXY", "socks4://proxy.test", "HTTPS_PROXY is not a proxy URL this tool can use"),
    ],
)
def test_an_unusable_proxy_setting_is_a_clean_error(name: str, value: str, message: str) -> None:
    if "socksio" in message and importlib.util.find_spec("socksio") is not None:
        pytest.skip("socksio is installed, so socks proxies are usable")
    env = {"LOFTY_API_URL": "https://api.lofty.test", "LOFTY_API_KEY": "k", name: value}
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        settings_from_env(env)
    assert "pw" not in str(info.value)


# --- a real misbehaving server ----------------------------------------------------------------


class Misbehaving(socketserver.ThreadingTCPServer):
    """A loopback HTTP server that misbehaves in a way chosen by the lead id in the path."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Misbehave)
        self.stop = threading.Event()
        self.url = f"http://127.0.0.1:{self.server_address[1]}"

    def close(self) -> None:
        self.stop.set()
        self.shutdown()
        self.server_close()


class _Misbehave(socketserver.BaseRequestHandler):
    server: Misbehaving

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(5)
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(4096)
                if not chunk:
                    return
                head += chunk
            lines = head.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1]
            headers = dict(line.split(": ", 1) for line in lines[1:])
            getattr(self, "lead_" + path.rsplit("/", 1)[1])(sock, headers)
        except OSError:
            pass  # the client hung up: that is the point

    def _answer(self, sock: socket.socket, head: str, body: bytes = b"") -> None:
        sock.sendall(head.encode("latin-1") + b"\r\n\r\n" + body)

    def lead_1(self, sock: socket.socket, headers: dict[str, str]) -> None:  # drips
        self._answer(
            sock, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 999"
        )
        while not self.server.stop.wait(0.05):
            sock.sendall(b" ")

    def lead_2(self, sock: socket.socket, headers: dict[str, str]) -> None:  # endless body
        self._answer(sock, "HTTP/1.1 200 OK\r\nConnection: close", b"[")
        while not self.server.stop.is_set():
            sock.sendall(b"1," * 65536)

    def lead_3(self, sock: socket.socket, headers: dict[str, str]) -> None:  # hostile 429
        body = f"\x1b[31mslow\x1b[0m\n::error::pwn {headers['Authorization']}".encode()
        self._answer(
            sock,
            "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 99999999\r\n"
            "X-RateLimit-Remaining: 0\r\nX-RateLimit-Reset: 9999999999\r\n"
            f"Content-Length: {len(body)}",
            body,
        )

    def lead_4(self, sock: socket.socket, headers: dict[str, str]) -> None:  # hostile 200
        body = b"\x1b]0;TITLE\x07<html>\n::error::x " + headers["Authorization"].encode()
        self._answer(sock, f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}", body)

    def lead_5(self, sock: socket.socket, headers: dict[str, str]) -> None:  # hostile headers
        self._answer(
            sock,
            "HTTP/1.1 200 OK\r\nX-RateLimit-Remaining: \x1b[2J5\r\nX-RateLimit-Reset: 1\r\n"
            "Content-Length: 13",
            b'{"leadId": 5}',
        )

    def lead_6(self, sock: socket.socket, headers: dict[str, str]) -> None:  # well behaved
        self._answer(sock, "HTTP/1.1 200 OK\r\nContent-Length: 13", b'{"leadId": 6}')

    def lead_7(self, sock: socket.socket, headers: dict[str, str]) -> None:  # never answers
        self.server.stop.wait(30)


@pytest.fixture
def misbehaving() -> Iterator[Misbehaving]:
    server = Misbehaving()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.close()


def small_bounds(url: str, **overrides: Any) -> ClientSettings:
    values: dict[str, Any] = {
        "base_url": url,
        "credentials": Credentials("Bearer", LONG_SECRET),
        "timeout": 5.0,  # per read: longer than the drip interval, so only the total deadline
        "attempt_deadline": 0.4,
        "lead_deadline": 1.5,
        "unreachable_deadline": 30.0,
        "max_wait": 0.3,
        "max_body_bytes": 64 * 1024,
    }
    values.update(overrides)
    return ClientSettings(**values)


def test_a_hostile_server_cannot_stall_a_run_or_reach_the_output(misbehaving: Misbehaving) -> None:
    notices: list[str] = []

    async def run() -> list[BaseException | None]:
        async with LoftyClient(small_bounds(misbehaving.url), notice=notices.append) as client:
            return await asyncio.gather(
                *(client.update_lead(lead, {"firstName": "A"}) for lead in range(1, 7)),
                return_exceptions=True,
            )

    started = time.monotonic()
    drip, endless, too_many, hostile, odd_headers, fine = asyncio.run(run())
    # lead_deadline 1.5 s (+ one attempt, + waits of at most 0.3 s); 60+ s without the bounds.
    assert time.monotonic() - started < 10.0
    assert fine is None and odd_headers is None
    assert isinstance(drip, ApiError) and "no complete answer within" in str(drip)
    assert isinstance(endless, ApiError) and str(endless) == (
        "HTTP 200 but the response is larger than 65536 B"
    )
    assert isinstance(too_many, ApiError) and str(too_many).startswith("gave up after ")
    assert "HTTP 429: \\u001b[31mslow\\u001b[0m\\u000a::error::pwn Bearer ***" in str(too_many)
    assert isinstance(hostile, ApiError) and str(hostile) == (
        "HTTP 200 but the response is not JSON: "
        "'\\u001b]0;TITLE\\u0007<html>\\u000a::error::x Bearer ***'"
    )
    shown = [str(e) for e in (drip, endless, too_many, hostile)] + notices
    assert not [
        text for text in shown if "\x1b" in text or "\n" in text or leaks(LONG_SECRET, text)
    ]
    assert sorted(notices) == [
        "Lofty's Retry-After header '99999999' asks for more than a rate window; waiting at most "
        "0.3 s at a time",
        "Lofty's X-RateLimit-Remaining header '\\u001b[2J5' is not a count of requests; ignored",
        "Lofty's X-RateLimit-Reset header '9999999999' is further away than a rate window; "
        "waiting at most 0.3 s at a time",
    ]


def test_a_server_that_never_answers_ends_the_run_by_the_unreachable_deadline(
    misbehaving: Misbehaving,
) -> None:
    s = small_bounds(misbehaving.url, attempt_deadline=0.3, lead_deadline=1.0)
    s = replace(s, unreachable_deadline=1.2, max_attempts=100)

    async def run() -> list[BaseException]:
        failures: list[BaseException] = []
        async with LoftyClient(s) as client:
            for _ in range(10):
                try:
                    await client.update_lead(7, {})
                except ApiError as exc:
                    failures.append(exc)
                    if isinstance(exc, ApiUnreachableError):
                        break
            with pytest.raises(ApiUnreachableError):
                await client.update_lead(7, {})
        return failures

    started = time.monotonic()
    failures = asyncio.run(run())
    assert time.monotonic() - started < 6.0  # 1.2 s deadline; far longer with per-read timeouts
    assert isinstance(failures[-1], ApiUnreachableError)
    assert "has not answered for" in str(failures[-1])

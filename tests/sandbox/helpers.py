"""What the sandbox tests share: the credential, requests, and checks against the vendor schema."""

from __future__ import annotations

from functools import cache
from typing import Any

import httpx
import jsonschema

from tests.vendor import response_validator

BEARER = {"Authorization": "Bearer secret-token"}


def put(client: httpx.Client, lead_id: int | str, body: Any) -> httpx.Response:
    return client.put(f"/v1.0/leads/{lead_id}", json=body)


@cache
def _validator(name: str, metadata_key: str) -> jsonschema.Draft7Validator:
    return response_validator(name, metadata_key=metadata_key)


def assert_vendor_shape(body: Any, name: str, *, metadata_key: str = "_metadata") -> None:
    """`body` validates against the vendor's `name` schema, closed to keys it does not list."""
    errors = [e.message for e in _validator(name, metadata_key).iter_errors(body)]
    assert errors == [], errors


def read(client: httpx.Client, lead_id: int) -> dict[str, Any]:
    """GET one lead; the body must be `{"lead": LeadResponse}`."""
    response = client.get(f"/v1.0/leads/{lead_id}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"lead"}
    assert_vendor_shape(body["lead"], "LeadResponse")
    lead: dict[str, Any] = body["lead"]
    return lead


def listing(client: httpx.Client, *, metadata_key: str = "_metadata", **params: Any) -> Any:
    """GET a page of leads; the body must be a `LeadListResponse`."""
    response = client.get("/v1.0/leads", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert_vendor_shape(body, "LeadListResponse", metadata_key=metadata_key)
    return body


def tag_names(lead: dict[str, Any]) -> list[str]:
    return [tag["tagName"] for tag in lead["tags"]]

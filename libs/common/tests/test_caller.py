"""The caller contract: one parser for the identity headers, path ids, and the bounded page."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request
from pydantic import ValidationError

from common.caller import (
    ANONYMOUS,
    PERMISSIONS_HEADER,
    PRINCIPAL_HEADER,
    caller,
    identity_headers,
    parse_permissions,
    parse_principal,
    path_uuid,
)
from common.errors import BadRequest
from common.paging import MAX_OFFSET, Page


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("key_0123", "key_0123"),
        ("  dana  ", "dana"),
        ("", None),
        (None, None),
        ("a" * 256, "a" * 256),
        ("a" * 257, None),
        ("dana\nroot", None),
        ("dana\x00", None),
        ("dana\x7f", None),
    ],
)
def test_one_sanitising_policy_for_the_principal(raw: str | None, expected: str | None) -> None:
    assert parse_principal(raw) == expected


def test_permissions_are_the_known_ones_only() -> None:
    assert parse_permissions("admin, read,write,root,") == {"admin", "read", "write"}
    assert parse_permissions(None) == frozenset()


def test_the_caller_of_a_request_reads_both_headers() -> None:
    request = make_mocked_request("GET", "/", headers=identity_headers("dana", {"write", "read"}))
    who = caller(request)
    assert (who.principal, who.actor) == ("dana", "dana")
    assert who.permissions == frozenset({"read", "write"})
    assert not who.is_admin
    assert request.headers[PERMISSIONS_HEADER] == "read,write"
    nobody = caller(make_mocked_request("GET", "/", headers={PRINCIPAL_HEADER: "\x01"}))
    assert nobody.actor == ANONYMOUS


def test_a_path_id_that_is_not_a_uuid_is_a_400_naming_the_field() -> None:
    request = make_mocked_request("GET", "/things/x", match_info={"id": "x"})
    with pytest.raises(BadRequest) as caught:
        path_uuid(request, "id", "thing")
    assert caught.value.detail == "The thing id in the path is not a UUID."
    assert caught.value.errors == [{"field": "id", "message": "must be a UUID"}]


@pytest.mark.parametrize("values", [{"limit": 0}, {"limit": 101}, {"offset": -1},
                                    {"offset": MAX_OFFSET + 1}, {"page": 2}])  # fmt: skip
def test_a_page_is_bounded(values: dict[str, int]) -> None:
    with pytest.raises(ValidationError):
        Page.model_validate(values)


def test_page_meta_names_the_page() -> None:
    assert Page(limit=5, offset=10).meta(42, at="x") == {
        "total": 42, "limit": 5, "offset": 10, "at": "x"
    }  # fmt: skip

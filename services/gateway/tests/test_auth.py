"""Credentials: API keys, bearer tokens, permissions, and what each failure answers."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .conftest import ADMIN, ADMIN_KEY, JWT_SECRET, Client, Recorder, create_key

BEARER_INVALID = 'Bearer realm="cloudops", error="invalid_token"'


async def test_bootstrap_key_is_stored_only_as_a_hash(client: Client, pg_url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(pg_url)
    try:
        rows = await conn.fetch("SELECT * FROM gateway.api_keys")
    finally:
        await conn.close()
    assert len(rows) == 1
    assert all(ADMIN_KEY.encode() not in bytes(str(dict(r)), "utf-8") for r in rows)
    assert sorted(rows[0]["permissions"]) == ["admin", "read", "write"]


async def test_bootstrap_is_idempotent_across_restarts(
    client: Client, make_client: Any, settings: Any, pg_url: str
) -> None:
    await make_client(settings)  # a second start with the same key
    import asyncpg

    conn = await asyncpg.connect(pg_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM gateway.api_keys") == 1
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing"),
        ({"X-API-Key": "ck_wrong"}, "wrong"),
        ({"X-API-Key": ""}, "empty"),
        ({"X-API-Key": "x" * 5000}, "oversized"),
    ],
)
async def test_bad_or_missing_key_is_401_with_challenge(
    client: Client, headers: dict[str, str], reason: str
) -> None:
    resp = await client.get("/api/resources", headers=headers)
    assert resp.status == 401, reason
    assert "ApiKey" in resp.headers["WWW-Authenticate"]
    body = await resp.json()
    assert body["status"] == 401
    assert resp.content_type == "application/problem+json"


@pytest.mark.parametrize("param", ["api_key", "apikey", "token", "access_token", "key"])
async def test_key_in_query_string_is_refused_even_when_valid(client: Client, param: str) -> None:
    resp = await client.get(f"/api/resources?{param}={ADMIN_KEY}", headers=ADMIN)
    assert resp.status == 401
    assert (await resp.json())["type"].endswith("credential-in-query")


async def test_created_key_is_shown_once_and_listed_without_secret(client: Client) -> None:
    key = await create_key(client, ["read"])
    assert key.startswith("ck_")
    listed = await client.get("/api/admin/keys", headers=ADMIN)
    body = await listed.json()
    assert body["meta"]["total"] == 2
    assert key not in orjson.dumps(body).decode()
    assert all("key" not in k and "key_hash" not in k for k in body["data"])
    assert (await client.get("/api/resources", headers={"X-API-Key": key})).status == 200


async def test_read_key_cannot_write(client: Client) -> None:
    key = await create_key(client, ["read"])
    resp = await client.post("/api/resources", json={}, headers={"X-API-Key": key})
    assert resp.status == 403
    assert "WWW-Authenticate" not in resp.headers


@pytest.mark.parametrize(
    ("permissions", "status"), [(["read"], 403), (["read", "write"], 403), (["admin"], 200)]
)
async def test_only_admin_reaches_admin_routes(
    client: Client, permissions: list[str], status: int
) -> None:
    key = await create_key(client, permissions)
    assert (await client.get("/api/admin/keys", headers={"X-API-Key": key})).status == status


async def test_write_key_may_read_and_write(client: Client, costs_recorder: Recorder) -> None:
    key = await create_key(client, ["write"])
    assert (await client.get("/api/costs/budgets", headers={"X-API-Key": key})).status == 200
    resp = await client.post("/api/costs/budgets", json={"a": 1}, headers={"X-API-Key": key})
    assert resp.status == 200
    assert costs_recorder.requests[-1]["headers"]["X-CloudOps-Permissions"] == "write"


async def test_revoked_key_is_401(client: Client) -> None:
    key = await create_key(client, ["read"])
    key_id = (await (await client.get("/api/admin/keys", headers=ADMIN)).json())["data"][-1]["id"]
    assert (await client.get("/api/resources", headers={"X-API-Key": key})).status == 200
    revoked = await client.delete(f"/api/admin/keys/{key_id}", headers=ADMIN)
    assert (await revoked.json())["data"]["revoked_at"] is not None
    assert (await client.get("/api/resources", headers={"X-API-Key": key})).status == 401


async def test_revoking_an_unknown_key_is_404(client: Client) -> None:
    assert (await client.delete("/api/admin/keys/key_nope", headers=ADMIN)).status == 404


async def test_expired_key_is_401(
    client: Client, pg_url: str, make_client: Any, settings: Any
) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=1)
    key = await create_key(client, ["read"], expires_at=soon.isoformat())
    import asyncpg

    conn = await asyncpg.connect(pg_url)
    try:  # move expiry into the past rather than sleeping through it
        await conn.execute(
            "UPDATE gateway.api_keys SET expires_at = now() - interval '1 second' "
            "WHERE id <> 'key_bootstrap'"
        )
    finally:
        await conn.close()
    # A replica that has not cached the key sees the expiry at once.
    other = await make_client(settings)
    assert (await other.get("/api/resources", headers={"X-API-Key": key})).status == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "k", "owner": "o", "permissions": ["root"]}, "permissions.0"),
        ({"name": "k", "owner": "o", "permissions": []}, "permissions"),
        ({"name": "<b>k</b>", "owner": "o", "permissions": ["read"]}, "name"),
        ({"name": "k", "owner": "o", "permissions": ["read"], "extra": 1}, "extra"),
        (
            {
                "name": "k",
                "owner": "o",
                "permissions": ["read"],
                "expires_at": "2001-01-01T00:00:00Z",
            },
            "expires_at",
        ),
        (
            {
                "name": "k",
                "owner": "o",
                "permissions": ["read"],
                "expires_at": "2999-01-01T00:00:00",
            },
            "expires_at",
        ),
    ],
)
async def test_invalid_key_requests_are_422_and_write_nothing(
    client: Client, body: dict[str, Any], field: str
) -> None:
    resp = await client.post("/api/admin/keys", json=body, headers=ADMIN)
    assert resp.status == 422
    assert field in [e["field"] for e in (await resp.json())["errors"]]
    listed = await (await client.get("/api/admin/keys", headers=ADMIN)).json()
    assert listed["meta"]["total"] == 1


async def token_for(client: Client, key: str = ADMIN_KEY) -> str:
    resp = await client.post("/api/auth/token", headers={"X-API-Key": key})
    assert resp.status == 200, await resp.text()
    data = (await resp.json())["data"]
    assert data["token_type"] == "Bearer"
    token: str = data["access_token"]
    return token


async def test_key_is_exchanged_for_a_working_bearer_token(
    client: Client, costs_recorder: Recorder
) -> None:
    key = await create_key(client, ["read"])
    token = await token_for(client, key)
    resp = await client.get("/api/costs/daily", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 200
    assert costs_recorder.requests[-1]["headers"]["X-CloudOps-Permissions"] == "read"
    assert "Authorization" not in costs_recorder.requests[-1]["headers"]
    write = await client.post(
        "/api/costs/budgets", json={}, headers={"Authorization": f"Bearer {token}"}
    )
    assert write.status == 403


async def test_token_without_any_credential_is_401(client: Client) -> None:
    resp = await client.post("/api/auth/token")
    assert resp.status == 401
    assert "ApiKey" in resp.headers["WWW-Authenticate"]


async def test_a_token_cannot_mint_another(client: Client) -> None:
    token = await token_for(client)
    resp = await client.post("/api/auth/token", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 403


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(data)).rstrip(b"=").decode()


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": "cloudops-gateway",
        "sub": "key_bootstrap",
        "kind": "key",
        "perms": ["admin", "read", "write"],
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": "abc",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _rsa_pem() -> tuple[Any, bytes]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


def _attack_tokens() -> dict[str, str]:
    now = int(time.time())
    private, public = _rsa_pem()
    signed = jwt.encode(_claims(), JWT_SECRET, algorithm="HS256")
    head, payload, sig = signed.split(".")
    return {
        "alg_none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims())}.",
        "alg_none_with_sig": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims())}.{sig}",
        "tampered_payload": f"{head}.{_b64(_claims(perms=['admin'], sub='mallory'))}.{sig}",
        "bad_signature": f"{head}.{payload}.{sig[:-4]}AAAA",
        "wrong_secret": jwt.encode(_claims(), "another-secret-of-at-least-32-bytes!!", "HS256"),
        "expired": jwt.encode(_claims(exp=now - 120, iat=now - 600, nbf=now - 600), JWT_SECRET),
        "not_yet_valid": jwt.encode(_claims(nbf=now + 120), JWT_SECRET),
        "missing_exp": jwt.encode(_claims(exp=None), JWT_SECRET),
        "wrong_issuer": jwt.encode(_claims(iss="someone-else"), JWT_SECRET),
        "hs512_same_secret": jwt.encode(_claims(), JWT_SECRET, algorithm="HS512"),
        "rs256_signed": jwt.encode(_claims(), private, algorithm="RS256"),
        # Algorithm confusion: HMAC-signed with the RSA public key as the secret.
        "hs256_with_public_key": _hmac_with(public),
        "bad_kind": jwt.encode(_claims(kind="root"), JWT_SECRET),
        "bad_permission": jwt.encode(_claims(perms=["root"]), JWT_SECRET),
        "garbage": "not.a.jwt",
    }


def _hmac_with(secret: bytes) -> str:
    import hashlib
    import hmac

    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT'})}.{_b64(_claims())}"
    digest = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}"


ATTACKS = sorted(_attack_tokens())


@pytest.mark.parametrize("attack", ATTACKS)
async def test_forged_and_stale_tokens_are_401_invalid_token(client: Client, attack: str) -> None:
    token = _attack_tokens()[attack]
    resp = await client.get("/api/resources", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 401, attack
    assert resp.headers["WWW-Authenticate"] == BEARER_INVALID


@pytest.mark.parametrize("header", ["Basic YWRtaW46YWRtaW4=", "Bearer", "Bearer " + "a" * 5000])
async def test_other_authorization_schemes_are_401(client: Client, header: str) -> None:
    resp = await client.get("/api/resources", headers={"Authorization": header})
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == BEARER_INVALID


async def test_token_within_leeway_is_accepted(client: Client) -> None:
    now = int(time.time())
    token = jwt.encode(_claims(exp=now - 2, iat=now - 300, nbf=now - 300), JWT_SECRET)
    resp = await client.get("/api/resources", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 200

"""Seeding never takes the platform down, and spends no user's quota.

``make up`` seeds the demo straight into the services on their own ports as the platform itself
(and stores the dashboard user through the gateway's user directory), so an admin key that has
used up its rate limit does not stop a second ``make up``; a seeding step that fails anyway is a
warning and the platform keeps running.
"""

from __future__ import annotations

import pytest

from common.testing import ServiceProcess, free_port, scratch_database, scratch_redis_prefix

from .conftest import ADMIN_KEY, load_platformctl, request, running_platform


def test_make_up_serves_and_seeds_after_the_admin_key_spent_its_quota(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    redis_prefix = scratch_redis_prefix()
    with scratch_database() as database_url:
        # A hundred admin calls within the window, as heavy use before a restart would make.
        port = free_port()
        gateway = ServiceProcess(
            "gateway",
            {
                "CLOUDOPS_DATABASE_URL": database_url,
                "CLOUDOPS_REDIS_PREFIX": redis_prefix,
                "CLOUDOPS_GATEWAY_PORT": str(port),
                "CLOUDOPS_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
                "CLOUDOPS_LOG_LEVEL": "WARNING",
            },
            port,
        )
        gateway.start(timeout=60)
        try:
            statuses = [
                request(f"{gateway.url}/api/admin/keys", key=ADMIN_KEY)[0] for _ in range(120)
            ]
        finally:
            gateway.close()
        assert statuses[-1] == 429, "the admin key's quota was not spent"

        env = {"CLOUDOPS_REDIS_PREFIX": redis_prefix}
        with running_platform(
            database_url, tmp_path_factory.mktemp("run"), extra_env=env
        ) as platform:
            text = "".join(platform.output)
            assert "WARNING: seeding" not in text, text
            assert "seeded the demo fleet (400 new resources)" in text, text
            assert "created 3 demo budgets" in text, text
            assert "[cloudops] dashboard login: user admin, password" in text, text
            assert request(f"{platform.api}/api/health")[0] == 200
            # The key's quota is still spent: seeding did not need it.
            assert request(f"{platform.api}/api/resources?limit=1", key=ADMIN_KEY)[0] == 429
            assert platform.process.poll() is None


def test_a_seeding_step_that_fails_is_a_warning(capsys: pytest.CaptureFixture[str]) -> None:
    """Nothing answers where the seed writes: each step says so, and seeding returns."""
    platformctl = load_platformctl()
    closed = f"http://127.0.0.1:{free_port()}"
    target = platformctl.SeedTarget(
        {"resources": closed, "costs": closed},
        database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/nothing",
    )
    login = platformctl.seed_demo(target, "admin", "a-long-enough-password", "jwt-secret")
    out = capsys.readouterr().out
    assert login == "dashboard login: none (see the warning above)"
    for step in ("the demo fleet", "utilisation", "demo billing", "demo budgets"):
        assert f"WARNING: seeding {step} failed" in out
    assert "WARNING: the dashboard user 'admin' could not be created" in out

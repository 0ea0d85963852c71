"""The deploy step of compose and Kubernetes: every consumer's queues and bindings are declared
(``python -m <service> declare-queues``) before any service that publishes events starts, so an
event published before its consumer first ran waits in its queue instead of being dropped.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aio_pika
import aiormq
import pytest
import yaml  # type: ignore[import-untyped]

from alerts.events import rule_subscription
from alerts.rules import load_rules
from alerts.settings import AlertsSettings
from common.messaging import QueueTopology, queue_topology
from common.testing import TEST_AMQP_URL, delete_exchanges, delete_queues, scratch_exchange
from costs.events import CONSUMERS

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("resources", "costs", "alerts", "gateway")
#: The services that consume events: those with a ``declare_queues`` (as ``make up`` finds them).
CONSUMING = tuple(
    s for s in SERVICES if hasattr(importlib.import_module(f"{s}.app"), "declare_queues")
)
#: The services that publish events: those that write to an outbox.
PUBLISHING = tuple(
    s
    for s in SERVICES
    if any("enqueue_event" in p.read_text() for p in (ROOT / f"services/{s}/src").rglob("*.py"))
)


def test_the_consumers_and_publishers_are_the_ones_the_deploy_files_name() -> None:
    assert CONSUMING == ("costs", "alerts")
    assert PUBLISHING == ("resources", "costs", "alerts")


# --- the command, on the real broker -------------------------------------------------------------


def _topologies(exchange: str) -> dict[str, list[QueueTopology]]:
    rules = load_rules(AlertsSettings().rules_file)
    return {
        "costs": [queue_topology(exchange, "costs", c, queue_expires_ms=60_000) for c in CONSUMERS],
        "alerts": [
            queue_topology(exchange, "alerts", rule_subscription(rules), queue_expires_ms=60_000)
        ],
    }


@pytest.fixture
def exchange() -> Iterator[str]:
    """A scratch events exchange; its queues and exchanges are deleted afterwards."""
    name = scratch_exchange()
    yield name
    queues = [q for ts in _topologies(name).values() for t in ts for q in t.names]
    asyncio.run(delete_queues(queues))
    asyncio.run(delete_exchanges([name]))


async def _missing_queues(names: list[str]) -> list[str]:
    """The queues of ``names`` the broker does not have (a passive declare fails on those)."""
    missing = []
    connection = await aio_pika.connect(TEST_AMQP_URL)
    try:
        for name in names:
            channel = await connection.channel()
            try:
                await channel.declare_queue(name, passive=True)
                await channel.close()
            except aiormq.exceptions.ChannelNotFoundEntity:
                missing.append(name)
    finally:
        await connection.close()
    return missing


async def _publish_and_count(exchange: str, routing_keys: set[str], queues: list[str]) -> list[int]:
    """Publish one persistent message per routing key (mandatory and confirmed: an unroutable one
    fails), then count the messages waiting in each of ``queues``."""
    connection = await aio_pika.connect(TEST_AMQP_URL)
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        target = await channel.get_exchange(exchange, ensure=True)
        for key in sorted(routing_keys):
            await target.publish(
                aio_pika.Message(b"{}", delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                routing_key=key,
                mandatory=True,
            )
        counts = []
        for name in queues:
            queue = await channel.declare_queue(name, passive=True)
            counts.append(queue.declaration_result.message_count or 0)
        return counts
    finally:
        await connection.close()


def _declare(service: str, exchange: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CLOUDOPS_EVENTS_EXCHANGE": exchange,
        "CLOUDOPS_AMQP_URL": TEST_AMQP_URL,
        "CLOUDOPS_QUEUE_EXPIRES_MS": "60000",
        "CLOUDOPS_LOG_LEVEL": "WARNING",
    }
    return subprocess.run(
        [sys.executable, "-m", service, "declare-queues"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_declare_queues_declares_every_queue_and_binding_and_events_then_wait(
    exchange: str,
) -> None:
    topologies = _topologies(exchange)
    every_queue = [q for ts in topologies.values() for t in ts for q in t.names]
    assert asyncio.run(_missing_queues(every_queue)) == every_queue  # nothing there before

    for service in CONSUMING:
        result = _declare(service, exchange)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == [t.main for t in topologies[service]]

    assert asyncio.run(_missing_queues(every_queue)) == []
    # No consumer has run: an event of every bound type is routed to each queue bound to it and
    # waits there.
    mains = [t for ts in topologies.values() for t in ts]
    keys = {k for t in mains for k in t.routing_keys}
    counts = asyncio.run(_publish_and_count(exchange, keys, [t.main for t in mains]))
    assert counts == [len(set(t.routing_keys)) for t in mains]
    assert all(counts)


def test_declare_queues_fails_loudly_without_a_broker(exchange: str) -> None:
    """A deploy step that cannot declare must not let the publishers start: it exits non-zero."""
    env_url = "amqp://guest:guest@127.0.0.1:1/"
    result = subprocess.run(
        [sys.executable, "-m", "alerts", "declare-queues"],
        env={**os.environ, "CLOUDOPS_EVENTS_EXCHANGE": exchange, "CLOUDOPS_AMQP_URL": env_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert result.stdout == ""


# --- compose -------------------------------------------------------------------------------------


def _compose() -> dict[str, Any]:
    compose: dict[str, Any] = yaml.safe_load((ROOT / "compose/docker-compose.yml").read_text())
    return compose


def _argv(service: dict[str, Any]) -> list[str]:
    """What the container runs: the image's ENTRYPOINT is ``python -m``, the command its module."""
    entrypoint = service.get("entrypoint", ["python", "-m"])
    return [*entrypoint, *service.get("command", [])]


def test_compose_declares_the_queues_before_any_publisher_starts() -> None:
    services = _compose()["services"]
    steps = {
        name: service
        for name, service in services.items()
        if _argv(service)[-1:] == ["declare-queues"]
    }
    publishers = {
        name: service
        for name, service in services.items()
        if _argv(service) in (["python", "-m", p] for p in PUBLISHING)
    }
    assert {_argv(publishers[n])[-1] for n in publishers} == set(PUBLISHING)
    for step_name, step in steps.items():
        assert step["depends_on"] == {"rabbitmq": {"condition": "service_healthy"}}, step_name
        assert step["restart"] == "no", step_name  # one-shot: a restart would never complete
        assert step["environment"]["CLOUDOPS_AMQP_URL"].startswith("amqp://"), step_name
        assert step["environment"]["CLOUDOPS_EVENTS_EXCHANGE"] == "cloudops.events", step_name
    for name, publisher in publishers.items():
        waits_for = {
            dep: cond
            for dep, cond in publisher["depends_on"].items()
            if cond == {"condition": "service_completed_successfully"}
        }
        declared = sorted(_argv(steps[dep])[2] for dep in waits_for if dep in steps)
        assert declared == sorted(CONSUMING), f"{name} starts before {CONSUMING} declared"
        for dep in waits_for:
            # The step of the same colour: the same image (its rules), the same profile.
            assert steps[dep]["image"] == publisher["image"], (name, dep)
            assert steps[dep].get("profiles") == publisher.get("profiles"), (name, dep)
            assert (
                steps[dep]["environment"]["CLOUDOPS_EVENTS_EXCHANGE"]
                == publisher["environment"]["CLOUDOPS_EVENTS_EXCHANGE"]
            )


# --- Kubernetes ----------------------------------------------------------------------------------


def _deployments() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((ROOT / "k8s/kustomization.yaml").read_text())
    documents = [
        d
        for f in kustomization["resources"]
        for d in yaml.safe_load_all((ROOT / "k8s" / f).read_text())
        if d
    ]
    return [d for d in documents if d["kind"] == "Deployment"]


def test_every_publishing_pod_declares_the_queues_before_it_starts() -> None:
    publishing = {}
    for deployment in _deployments():
        spec = deployment["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        if container["args"][0] in PUBLISHING:
            publishing[container["args"][0]] = spec
    assert sorted(publishing) == sorted(PUBLISHING)
    for service, spec in publishing.items():
        (container,) = spec["containers"]
        steps = spec.get("initContainers", [])
        assert sorted(s["args"] for s in steps) == sorted(
            [c, "declare-queues"] for c in CONSUMING
        ), service
        for step in steps:
            assert step["image"] == container["image"], service
            assert {e["name"]: e for e in step["env"]}["CLOUDOPS_AMQP_URL"] == {
                e["name"]: e for e in container["env"]
            }["CLOUDOPS_AMQP_URL"]
            assert step["envFrom"] == container["envFrom"]  # the events exchange
            # Pod Security Standard "restricted" applies to init containers too.
            assert step["securityContext"]["allowPrivilegeEscalation"] is False
            assert step["securityContext"]["capabilities"]["drop"] == ["ALL"]
            assert step["resources"]["limits"]

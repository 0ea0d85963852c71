"""Shared building blocks of the CloudOps services: config, logs, web, metrics, storage, events."""

"""A typed client for the CloudOps public API."""

"""The CloudOps costs service."""

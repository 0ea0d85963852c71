"""The CloudOps gateway service."""

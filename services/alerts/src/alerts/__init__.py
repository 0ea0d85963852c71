"""The CloudOps alerts service."""

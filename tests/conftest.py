"""Cross-service and end-to-end tests: the platform as an operator runs it."""

"""The `cloudops` command."""


def main() -> None:
    raise SystemExit("cloudops: not built yet")

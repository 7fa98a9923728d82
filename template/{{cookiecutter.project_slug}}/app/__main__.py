"""``python -m app``: check that the service reaches its database through ``DATABASE_URL``."""

from __future__ import annotations

import sys

from app.core.startup import check_or_exit


def main() -> int:
    """Connect once and print who and where the service is on the server."""
    sys.stdout.write(check_or_exit() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

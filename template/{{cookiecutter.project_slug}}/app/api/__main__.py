"""``python -m app.api``: the API under uvicorn on ``HOST``:``PORT``, request ids in its log."""

from __future__ import annotations

import os
import sys

import uvicorn

from app.api.observability import log_config
from app.core.startup import check_or_exit


def port() -> int:
    """``PORT`` as a number, or one line that says what to set and exit status 2."""
    given = os.environ.get("PORT", "8000")
    if given.isdigit() and 0 < int(given) < 65536:
        return int(given)
    sys.stderr.write(f"error: PORT={given!r} is not a TCP port. Fix: PORT=8000 (1 to 65535).\n")
    raise SystemExit(2)


def main() -> None:
    """Check the database and the role (see app.core.startup), then serve ``create_app()``."""
    listen_on = port()
    check_or_exit()
    uvicorn.run(
        "app.api:create_app",
        factory=True,
        host=os.environ.get("HOST", "127.0.0.1"),
        port=listen_on,
        log_config=log_config(os.environ.get("LOG_LEVEL", "INFO")),
        proxy_headers=True,
    )


if __name__ == "__main__":
    main()

"""Run every ```python block of one Markdown page, top to bottom, in one namespace.

Each page runs in a process of its own, as a reader pasting its examples would: models one page
declares on ``pgkeel.Base`` never meet another page's. Exit status 3 means "skip" (a program
the page needs, such as PgBouncer, is not installed).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
SKIP_STATUS = 3


def python_blocks(page: Path) -> list[tuple[int, str]]:
    """Each ```python block of a page with the line number where its code starts."""
    text = page.read_text()
    return [(text.count("\n", 0, m.start(1)) + 1, m.group(1)) for m in BLOCK.finditer(text)]


def run(page: Path) -> None:
    """Execute the page's blocks in order; tracebacks point at the page's own line numbers."""
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
    for line, code in python_blocks(page):
        padded = "\n" * (line - 1) + code
        exec(compile(padded, str(page), "exec", dont_inherit=True), namespace)  # noqa: S102


def main(page: Path) -> int:
    """Run ``page``; a missing PgBouncer is a skip, not a failure."""
    from pgkeel.testing.pgbouncer import PgBouncerNotFoundError  # noqa: PLC0415

    try:
        run(page)
    except PgBouncerNotFoundError as missing:
        print(missing, file=sys.stderr)
        return SKIP_STATUS
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))

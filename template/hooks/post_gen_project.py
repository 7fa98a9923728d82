"""Remove what the answers turned off, then print the next three commands."""

from __future__ import annotations

import sys
from pathlib import Path

MULTI_TENANT = "{{ cookiecutter.multi_tenant }}"  # checked by pre_gen_project.py: yes or no
SLUG = "{{ cookiecutter.project_slug }}"

# Files that only a multi-tenant service has.
TENANT_FILES = (
    Path("app/models/tenant.py"),
    Path("tests/test_tenant_isolation.py"),
)

NEXT_STEPS = f"""
Created {SLUG}/. Next:

    cd {SLUG}
    make install    # .venv with the service and its dev tools
    make test       # migrations, standards and isolation tests on a real PostgreSQL
"""


def remove_turned_off() -> None:
    """Delete the files that belong to options that were answered 'no'."""
    if MULTI_TENANT == "no":
        for path in TENANT_FILES:
            path.unlink()


def main() -> int:
    """Trim the generated service and tell the user what to run."""
    remove_turned_off()
    sys.stdout.write(NEXT_STEPS)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Remove what the answers turned off, then print the next three commands."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

MULTI_TENANT = "{{ cookiecutter.multi_tenant }}"  # checked by pre_gen_project.py: yes or no
HTTP = "{{ cookiecutter.http }}"  # checked by pre_gen_project.py: fastapi or none
SLUG = "{{ cookiecutter.project_slug }}"

# Files that only a multi-tenant service has.
TENANT_FILES = (
    Path("app/models/tenant.py"),
    Path("tests/test_tenant_isolation.py"),
    Path("app/api/tenancy.py"),
    Path("app/api/tenants.py"),
    Path("tests/api/test_api_tenants.py"),
)

# Files that only a service with an HTTP API has.
HTTP_FILES = (Path("app/api"), Path("tests/api"))

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
    if HTTP == "none":
        for directory in HTTP_FILES:
            shutil.rmtree(directory)


def main() -> int:
    """Trim the generated service and tell the user what to run."""
    remove_turned_off()
    sys.stdout.write(NEXT_STEPS)
    return 0


if __name__ == "__main__":
    sys.exit(main())

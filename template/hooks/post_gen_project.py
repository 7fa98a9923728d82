"""Remove what the answers turned off, bring pgkeel in as a wheel, lock, print the next commands.

When pgkeel is not taken from a package index (the default: it is built from the repository that
holds this template), its wheel goes into ``wheels/`` and ``pyproject.toml`` points uv at it by a
relative path, so the lock file, the Makefile and the Dockerfile need no index for pgkeel and no
absolute path of the machine that rendered the service.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

MULTI_TENANT = "{{ cookiecutter.__tenants }}"  # multi_tenant read as yes or no (cookiecutter.json)
HTTP = "{{ cookiecutter.http }}"  # checked before (pgkeel_template_answers.py)
SLUG = "{{ cookiecutter.project_slug }}"
REQUIREMENT = "{{ cookiecutter.pgkeel_requirement }}"  # checked before (pgkeel_template_answers.py)
TEMPLATE_DIR = Path(r"{{ cookiecutter._repo_dir }}")  # as typed: see typed_path
FROM_TEMPLATE = "from-template"
WHEELS = Path("wheels")
UV_SOURCES = """
[tool.uv.sources]
# pgkeel comes from a wheel in this repository, not from a package index (see wheels/README.md).
"""

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

NEXT_STEPS = """
Created {where}/. Next:

    cd {where}
    make install    # .venv with the service and its dev tools (uv, from uv.lock)
    make test       # migrations, standards and isolation tests on a real PostgreSQL
"""


def where_created() -> str:
    """The service's directory as the user reaches it from the shell that ran cookiecutter.

    The hook runs inside the new directory; with ``-o`` (or the Python API) it is not under
    the shell's directory, and only its full path gets the user there.
    """
    here = Path.cwd()
    shell = Path(os.environ.get("PWD", here)).resolve()
    return here.name if here.parent == shell else str(here)


class HookError(Exception):
    """A step that failed: one paragraph saying what, and the fix."""


def typed_path(path: Path) -> Path:
    """A path as typed to cookiecutter, made absolute.

    Cookiecutter passes the template's path as the user typed it, but runs its hooks inside the
    new service's directory; a relative path is resolved against the directory the command was
    started in (the shell's ``PWD``).
    """
    if path.is_absolute():
        return path
    return Path(os.environ.get("PWD", ".")).joinpath(path).resolve()


def remove_turned_off() -> None:
    """Delete the files that belong to options that were answered 'no'."""
    if MULTI_TENANT == "no":
        for path in TENANT_FILES:
            path.unlink()
    if HTTP == "none":
        for directory in HTTP_FILES:
            shutil.rmtree(directory)


def uv_command() -> list[str] | None:
    """How to run uv here: on PATH, else the uv package of this Python; None without uv."""
    found = shutil.which("uv")
    if found:
        return [found]
    probe = subprocess.run(
        [sys.executable, "-m", "uv", "--version"], capture_output=True, check=False
    )
    return [sys.executable, "-m", "uv"] if probe.returncode == 0 else None


def run(argv: list[str], what: str) -> None:
    """Run a command quietly; a failure becomes a HookError with its last lines."""
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        lines = [line.strip() for line in (result.stderr or result.stdout).splitlines()]
        tail = " ".join([line for line in lines if line][-3:])
        raise HookError(f"{what} failed: {tail.rstrip('.')}")


def build_wheel(source: Path) -> None:
    """Build pgkeel's wheel from a checkout or an sdist into ``wheels/``, with uv or pip."""
    uv = uv_command()
    if uv is not None:
        argv = [*uv, "build", "--wheel", "--quiet", "--out-dir", str(WHEELS), str(source)]
    else:
        argv = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"]
        argv += ["--wheel-dir", str(WHEELS), str(source)]
    run(argv, f"building pgkeel's wheel from {source}")
    (WHEELS / ".gitignore").unlink(missing_ok=True)  # uv build's "*": the wheel must be committed


def build_from_git(url: str) -> None:
    """Clone ``git+URL[@REF]`` into a temporary directory and build pgkeel's wheel from it."""
    address = url.removeprefix("git+")
    ref = None
    match = re.fullmatch(r"(.*/[^/@]+)@([^/@]+)", address)
    if match:
        address, ref = match.groups()
    if shutil.which("git") is None:
        raise HookError(f"pgkeel_requirement {url!r} needs git, which is not on PATH")
    with tempfile.TemporaryDirectory(prefix="pgkeel-clone-") as scratch:
        checkout = Path(scratch) / "pgkeel"
        run(["git", "clone", "--quiet", address, str(checkout)], f"git clone {address}")
        if ref:
            run(["git", "-C", str(checkout), "checkout", "--quiet", ref], f"git checkout {ref}")
        build_wheel(checkout)


def place_wheel() -> str | None:
    """Put pgkeel's wheel into ``wheels/`` unless it comes from an index; its file name."""
    if REQUIREMENT == FROM_TEMPLATE:
        build_wheel(typed_path(TEMPLATE_DIR).parent)
    elif REQUIREMENT.startswith("git+"):
        build_from_git(REQUIREMENT)
    elif REQUIREMENT.endswith(".whl"):
        shutil.copy2(REQUIREMENT, WHEELS)
    elif REQUIREMENT.startswith("/"):
        build_wheel(Path(REQUIREMENT))
    else:
        return None
    wheels = sorted(path.name for path in WHEELS.glob("pgkeel-*.whl"))
    if len(wheels) != 1:
        raise HookError(f"expected one pgkeel wheel in wheels/, found {wheels or 'none'}")
    return wheels[0]


def point_uv_at(wheel: str) -> None:
    """The ``[tool.uv.sources]`` entry that takes pgkeel from ``wheels/``: added, or replaced.

    A template applied again over the service (``cookiecutter -f -s``) keeps its pyproject.toml,
    which has the entry already: a second table would make the file invalid TOML.
    """
    pyproject = Path("pyproject.toml")
    entry = 'pgkeel = { path = "' + (WHEELS / wheel).as_posix() + '" }\n'
    text = pyproject.read_text()
    if UV_SOURCES.strip() not in text:
        pyproject.write_text(text + UV_SOURCES + entry)
        return
    head, table, rest = text.partition(UV_SOURCES.strip() + "\n")
    kept = [line for line in rest.splitlines(keepends=True) if not line.startswith("pgkeel =")]
    pyproject.write_text(head + table + entry + "".join(kept))


_LOCK_ERROR_CHARS = 400
"""How much of uv's own words a failed lock shows (its whole message, on one line)."""


def lock() -> str:
    """Write uv.lock when uv is at hand; the line that says what happened."""
    uv = uv_command()
    if uv is None:
        return "uv.lock: uv is not installed here; `make install` installs uv and writes it."
    result = subprocess.run([*uv, "lock", "--quiet"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        said = " ".join(result.stderr.split()) or "no output"
        said = said if len(said) <= _LOCK_ERROR_CHARS else said[: _LOCK_ERROR_CHARS - 3] + "..."
        return f"uv.lock: not written (uv lock said: {said}); `make install` writes it."
    return "uv.lock: written by uv (commit it with the service)."


def main() -> int:
    """Trim the generated service, bring pgkeel in, lock, and tell the user what to run."""
    remove_turned_off()
    try:
        wheel = place_wheel()
    except (HookError, OSError) as exc:
        sys.stderr.write(
            f"error: {exc}. Fix: check pgkeel_requirement ({REQUIREMENT!r}); give a version "
            "range such as '>=0.1,<0.2' if pgkeel is on your package index.\n"
        )
        return 1
    if wheel is not None:
        point_uv_at(wheel)
    sys.stdout.write(lock() + "\n" + NEXT_STEPS.format(where=where_created()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

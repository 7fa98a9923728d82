"""The answers that would give a broken service, refused before cookiecutter writes anything.

``local_extensions.checked_answers`` runs ``problems`` while cookiecutter builds its context,
after the last answer and before any directory is made: a bad slug such as ``a/b`` or
``../x`` never becomes a path. Each problem is one line on stderr that says what to type
instead; then ``FailedHookException``, which cookiecutter's command line reports in one line
(exit status 1) and its Python API raises.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

# Names the service's distribution must not take: a distribution cannot depend on its own name,
# nor on a package that depends on it. (Its code is always the package `app`, so names of
# standard-library modules are fine.)
DEPENDENCY_NAMES_FILE = "dependency_names.txt"  # in the template's directory, beside this module
SLUG_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
# PostgreSQL names (the database, the roles `<slug>` and `<slug>_app`) hold at most 63 bytes.
ROLE_SUFFIX = "_app"
MAX_SLUG_BYTES = 63 - len(ROLE_SUFFIX)
YES = ("yes", "y", "true", "1", "on")
NO = ("no", "n", "false", "0", "off")
SPECIFIER_PATTERN = re.compile(
    r"(~=|===|==|!=|<=|>=|<|>)\s*[0-9][0-9A-Za-z.*+!-]*"
    r"(\s*,\s*(~=|===|==|!=|<=|>=|<|>)\s*[0-9][0-9A-Za-z.*+!-]*)*"
)
FORBIDDEN_IN_NAME = re.compile(r'["\\\x00-\x1f\x7f]')


def suggest_slug(text: str, reserved: frozenset[str]) -> str:
    """A valid slug, short enough for the role names, that resembles ``text``."""
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "my_service"
    if slug[0].isdigit():
        slug = f"service_{slug}"
    if is_reserved(slug, reserved):
        slug = f"{slug}_service"
    return slug[:MAX_SLUG_BYTES].rstrip("_")


def dependency_names(template_dir: Path) -> frozenset[str]:
    """The distributions a rendered service locks (``dependency_names.txt``), as slugs."""
    lines = (template_dir / DEPENDENCY_NAMES_FILE).read_text().splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def is_reserved(slug: str, reserved: frozenset[str]) -> bool:
    """Whether ``slug`` is the name of a distribution the service depends on, even indirectly."""
    return slug in reserved


def check_project_name(name: str) -> str | None:
    """The error for a project name that cannot go into the generated files, if any."""
    if not name.strip():
        return "project_name is empty; type a name such as 'Billing Service'."
    if not any(character.isalnum() for character in name):
        return (
            f"project_name {name!r} has no letter or digit to name the service by; type a name "
            "such as 'Billing Service'."
        )
    if FORBIDDEN_IN_NAME.search(name):
        cleaned = FORBIDDEN_IN_NAME.sub("", name).strip() or "Billing Service"
        return (
            f"project_name {name!r} contains a quote, a backslash or a control character; "
            f"type it without them, e.g. {cleaned!r}."
        )
    return None


def check_slug(slug: str, reserved: frozenset[str]) -> str | None:
    """The error for a slug that is not a usable Python and PyPI name, if any."""
    if not SLUG_PATTERN.fullmatch(slug):
        return (
            f"project_slug {slug!r} is not a valid Python identifier and PyPI name "
            f"(lowercase letters, digits and underscores, starting with a letter); "
            f"type project_slug={suggest_slug(slug, reserved)} instead."
        )
    if len(slug.encode()) > MAX_SLUG_BYTES:
        return (
            f"project_slug {slug!r} is {len(slug)} bytes: the runtime role {slug}{ROLE_SUFFIX} "
            f"would exceed PostgreSQL's 63 bytes (the slug may have {MAX_SLUG_BYTES}); "
            f"type project_slug={suggest_slug(slug, reserved)} instead."
        )
    if is_reserved(slug, reserved):
        return (
            f"project_slug {slug!r} is reserved: it is the name of a distribution the service "
            f"depends on (directly or through another one); type "
            f"project_slug={suggest_slug(slug, reserved)} instead."
        )
    return None


def check_yes_no(name: str, value: str) -> str | None:
    """The error for a yes/no answer that is neither (yes, true, 1, on; no, false, 0, off)."""
    if value.strip().lower() in YES + NO:
        return None
    return (
        f"{name} {value!r} is not supported; type one of: yes, no (or true/false, 1/0, on/off; "
        f"e.g. {name}=yes)."
    )


def check_choice(name: str, value: str, choices: list[str]) -> str | None:
    """The error for a value that is not one of ``choices``, if any."""
    if value in choices:
        return None
    listed = ", ".join(choices)
    return f"{name} {value!r} is not supported; type one of: {listed} (e.g. {name}={choices[0]})."


FROM_TEMPLATE = "from-template"
GIT_URL_PATTERN = re.compile(r"git\+(https|http|ssh|file)://\S+")


def is_pgkeel_checkout(directory: Path) -> bool:
    """Whether ``directory`` holds pgkeel's pyproject.toml."""
    pyproject = directory / "pyproject.toml"
    return pyproject.is_file() and 'name = "pgkeel"' in pyproject.read_text()


def check_pgkeel_requirement(requirement: str, template_dir: Path) -> str | None:
    """The error for a pgkeel source that is none of: the template's checkout, a path, a URL."""
    choices = (
        "type from-template (the repository holding this template), a version range such as "
        "'>=0.1,<0.2' (a package index), the absolute path of a pgkeel checkout or wheel, or a "
        "git URL such as git+https://host/pgkeel.git@v0.1.0"
    )
    if requirement == FROM_TEMPLATE:
        if is_pgkeel_checkout(template_dir.parent):
            return None
        return (
            f"pgkeel_requirement {FROM_TEMPLATE!r} builds pgkeel from the repository that holds "
            f"the template, but {template_dir.parent} holds no pgkeel pyproject.toml; {choices}."
        )
    if requirement.startswith("/"):
        path = Path(requirement)
        wheel = path.is_file() and path.name.startswith("pgkeel-") and path.suffix == ".whl"
        if wheel or is_pgkeel_checkout(path):
            return None
        return f"pgkeel_requirement {requirement!r} is not a pgkeel checkout or wheel; {choices}."
    if GIT_URL_PATTERN.fullmatch(requirement) or SPECIFIER_PATTERN.fullmatch(requirement.strip()):
        return None
    return (
        f"pgkeel_requirement {requirement!r} is neither a version range, an absolute path nor "
        f"a git URL; {choices}."
    )


def problems(answers: dict[str, Any], template_dir: Path) -> list[str]:
    """Every problem with the answers, in the order the questions were asked."""
    found = [
        check_project_name(str(answers["project_name"])),
        check_slug(str(answers["project_slug"]), dependency_names(template_dir)),
        check_yes_no("multi_tenant", str(answers["multi_tenant"])),
        check_choice("http", str(answers["http"]), ["fastapi", "none"]),
        check_choice(
            "postgres_version",
            str(answers["postgres_version"]),
            [str(version) for version in answers["_postgres_versions"]],
        ),
        check_pgkeel_requirement(str(answers["pgkeel_requirement"]), template_dir),
    ]
    return [problem for problem in found if problem is not None]

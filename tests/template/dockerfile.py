"""Run a Dockerfile's steps without Docker: its COPY, ENV, WORKDIR and RUN on this machine.

The image's root is a directory, the build context a clean copy of what .dockerignore lets
through, and ``pip``/``python`` those of a fresh virtual environment standing in for the base
image's. An instruction this runner does not know fails the test instead of being skipped.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

IGNORED = {"FROM", "USER", "EXPOSE", "LABEL", "ARG"}


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of each step, continuation lines joined, comments dropped."""
    steps: list[tuple[str, str]] = []
    pending = ""
    for line in dockerfile.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip().removesuffix("\\") + " " if line.rstrip().endswith("\\") else line
        if not line.rstrip().endswith("\\"):
            keyword, _, arguments = pending.strip().partition(" ")
            steps.append((keyword.upper(), arguments.strip()))
            pending = ""
    return steps


@dataclass
class Image:
    """What the steps built: the root directory, the environment, the commands to run."""

    root: Path
    venv: Path
    workdir: PurePosixPath = field(default_factory=lambda: PurePosixPath("/"))
    env: dict[str, str] = field(default_factory=dict)
    cmd: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)

    def path(self, inside: str) -> Path:
        """Where a path of the image lives on this machine."""
        absolute = self.workdir / inside
        return self.root / absolute.relative_to("/")

    def environ(self, **extra: str) -> dict[str, str]:
        """The environment of a process of the image."""
        base = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "VIRTUAL_ENV"))}
        base.pop("DATABASE_URL", None)
        base.pop("MIGRATION_DATABASE_URL", None)
        base["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{base.get('PATH', '')}"
        base["VIRTUAL_ENV"] = str(self.venv)
        return {**base, **self.env, **extra}

    def run(self, command: list[str], **extra: str) -> subprocess.CompletedProcess[str]:
        """Run a command of the image in its working directory."""
        return subprocess.run(
            command,
            cwd=self.path("."),
            env=self.environ(**extra),
            capture_output=True,
            text=True,
            check=False,
        )

    def start(self, command: list[str], **extra: str) -> subprocess.Popen[str]:
        """Start a long-running command of the image."""
        return subprocess.Popen(
            command,
            cwd=self.path("."),
            env=self.environ(**extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )


def _copy(image: Image, context: Path, arguments: str) -> None:
    """COPY: a directory's contents into the destination; files into it when it ends with /."""
    *sources, destination = shlex.split(arguments)
    target = image.path(destination)
    for source in sources:
        origin = context / source
        if origin.is_dir():
            shutil.copytree(origin, target, dirs_exist_ok=True)
        elif destination.endswith("/"):
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, target / origin.name)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, target)


def _env(image: Image, arguments: str) -> None:
    for pair in shlex.split(arguments):
        name, _, value = pair.partition("=")
        image.env[name] = value


def _run(image: Image, arguments: str) -> None:
    result = subprocess.run(
        ["sh", "-c", arguments],
        cwd=image.path("."),
        env=image.environ(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"RUN {arguments}:\n{result.stdout}\n{result.stderr}"


def _healthcheck(image: Image, arguments: str) -> None:
    _options, _, command = arguments.partition("CMD ")
    image.healthcheck = json.loads(command)


def build(dockerfile: Path, context: Path, root: Path) -> Image:
    """Run the Dockerfile's steps with ``context`` as the build context and ``root`` as /."""
    venv = root.parent / "base-python"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    image = Image(root=root, venv=venv)
    for keyword, arguments in instructions(dockerfile):
        if keyword == "WORKDIR":
            image.workdir = image.workdir / arguments
            image.path(".").mkdir(parents=True, exist_ok=True)
        elif keyword == "COPY":
            _copy(image, context, arguments)
        elif keyword == "ENV":
            _env(image, arguments)
        elif keyword == "RUN":
            _run(image, arguments)
        elif keyword == "HEALTHCHECK":
            _healthcheck(image, arguments)
        elif keyword == "CMD":
            image.cmd = json.loads(arguments)
        else:
            assert keyword in IGNORED, f"this runner does not know {keyword}: teach it"
    return image

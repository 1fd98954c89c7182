"""Run a command under a container's conditions with bubblewrap (tests/test_sandbox.py).

The conditions of ``docker run --read-only --user 1000 --network none`` and of
``apptainer run --containall``: the root file system and the dataset read-only, another user id
(1000, in a user namespace), no network (a network namespace of its own with nothing in it),
``$HOME`` not writable, a fresh ``/proc`` and ``/dev``, and only the output and work folders
writable (``/tmp`` is the host's, read-only: ``--read-only`` without ``--tmpfs``). The
environment is the image's own, parsed from the Dockerfile's ``ENV`` instructions, so the test and
the image cannot drift apart; only ``PATH`` gains the folder of the installed commands, since the
app is installed in a virtual environment here rather than in the image's Python.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from pathlib import Path

#: The user id the image runs as (Dockerfile ``USER``), and Docker's default PATH of the base.
UID = 1000
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def bwrap() -> str | None:
    """The bubblewrap executable, or None."""
    return shutil.which("bwrap")


def _expand(value: str, env: dict[str, str]) -> str:
    def sub(match: re.Match) -> str:
        return env.get(match.group(1) or match.group(2), "")

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", sub, value)


def dockerfile_env(dockerfile: Path, build_args: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of the image's last stage, from its ``ENV`` instructions (``key=value``
    pairs, quoted or not, over continued lines; ``$VAR`` expanded as Docker does, with the
    stage's ``ARG`` values from ``build_args``)."""
    text = Path(dockerfile).read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    last_from = max(i for i, line in enumerate(lines) if line.upper().startswith("FROM "))
    env = {"PATH": BASE_PATH}
    args = dict(build_args or {})
    for line in lines[last_from + 1:]:
        keyword, _, rest = line.partition(" ")
        if keyword.upper() == "ARG":
            name, _, default = rest.strip().partition("=")
            args.setdefault(name, default)
        elif keyword.upper() == "ENV":
            scope = {**args, **env}
            for token in shlex.split(rest, posix=True):
                name, sep, value = token.partition("=")
                if not sep:
                    raise ValueError(f"ENV without '=' is not supported: {line}")
                env[name] = _expand(value, scope)
                scope[name] = env[name]
    return env


def sandbox_command(command: list[str], *, writable: list[Path], read_only: list[Path] = (),
                    env: dict[str, str], cwd: Path) -> list[str]:
    """The bubblewrap command line running ``command`` under the container's conditions.

    ``writable`` folders (output, work) are the only places that can be written; ``read_only``
    ones are mounted again read-only on top (the dataset, even when it lies inside a writable
    folder). Everything else, ``/tmp`` and ``$HOME`` included, is the host's, read-only.
    """
    args = [bwrap(), "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
            "--unshare-all", "--unshare-user", "--uid", str(UID), "--gid", str(UID),
            "--cap-drop", "ALL", "--die-with-parent", "--new-session", "--clearenv"]
    for folder in writable:
        args += ["--bind", str(folder), str(folder)]
    for folder in read_only:
        args += ["--ro-bind", str(folder), str(folder)]
    for name, value in env.items():
        args += ["--setenv", name, value]
    args += ["--chdir", str(cwd), "--"]
    return args + list(command)


def writes_denied(text: str) -> list[str]:
    """Lines of a log that report a write refused by the sandbox (a step that tolerated it would
    otherwise pass unnoticed)."""
    patterns = ("Read-only file system", "Permission denied", "is not a writable directory",
                "No usable temporary directory")
    return [line for line in text.splitlines() if any(p in line for p in patterns)]


def environ_without_proxies() -> dict[str, str]:
    """The test process's environment (for the run outside the sandbox)."""
    return dict(os.environ)

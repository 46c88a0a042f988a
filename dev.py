#!/usr/bin/env python3
"""Bootstrap for newcomers: the README's two commands.

    python3 dev.py serve [entativa serve options]   # install, then serve the graph
    python3 dev.py test  [pytest options]           # install, then run every test

Needs only Python 3.11. It creates `.venv/`, installs the project into it (again
only when pyproject.toml changed), fetches the npm packages the GraphiQL page and
the federation interop tests use when `npm` is present, and then runs the real
command. Running it twice does the work once.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"


def say(message: str) -> None:
    print(f"[dev] {message}", flush=True)


def run(cmd: list[str], cwd: Path = ROOT) -> None:
    say("$ " + " ".join(cmd))
    result = subprocess.run(cmd, cwd=cwd)
    if result.returncode != 0:
        sys.exit(f"[dev] failed: {' '.join(cmd)} (exit {result.returncode}); see the output above")


def fingerprint(*files: Path) -> str:
    digest = hashlib.sha256()
    for file in files:
        if file.exists():
            digest.update(file.read_bytes())
    return digest.hexdigest()


def ensure_python_env(extra: str) -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 (a newcomer may run an older python3)
        sys.exit("[dev] Python 3.11 or newer is needed: run this with python3.11")
    if not PY.exists():
        say("creating .venv")
        venv.EnvBuilder(with_pip=True).create(VENV)
    stamp = VENV / f".dev-stamp-{extra or 'base'}"
    wanted = fingerprint(ROOT / "pyproject.toml")
    if stamp.exists() and stamp.read_text() == wanted:
        return
    say("installing the project into .venv (this takes a minute the first time)")
    run([str(PY), "-m", "pip", "install", "--disable-pip-version-check", "-q", "--upgrade", "pip"])
    target = f".[{extra}]" if extra else "."
    run([str(PY), "-m", "pip", "install", "--disable-pip-version-check", "-q", "-e", target])
    stamp.write_text(wanted)


def ensure_npm(folder: Path) -> bool:
    """`npm ci` in folder when its lockfile changed; False when npm is missing."""
    if not (folder / "package-lock.json").exists():
        return False
    npm = shutil.which("npm")
    if npm is None:
        say(f"npm not found: skipping {folder.relative_to(ROOT)} (install Node.js 20+ to get it)")
        return False
    stamp = folder / "node_modules" / ".dev-stamp"
    wanted = fingerprint(folder / "package-lock.json")
    if stamp.exists() and stamp.read_text() == wanted:
        return True
    say(f"npm ci in {folder.relative_to(ROOT)}")
    run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=folder)
    stamp.write_text(wanted)
    return True


def serve(args: list[str]) -> None:
    ensure_python_env("")
    ensure_npm(ROOT / "server" / "graphiql")
    os.execv(str(BIN / "entativa"), [str(BIN / "entativa"), "serve", *args])


def test(args: list[str]) -> None:
    ensure_python_env("test")
    ensure_npm(ROOT / "server" / "graphiql")
    ensure_npm(ROOT / "tests" / "interop")
    os.chdir(ROOT)
    os.execv(str(PY), [str(PY), "-m", "pytest", *args])


def main() -> None:
    commands = {"serve": serve, "test": test}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit("usage: python3 dev.py serve|test [options]")
    commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()

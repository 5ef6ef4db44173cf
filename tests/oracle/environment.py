"""The second reference's interpreter: a cached virtual environment with icechunk 2.3.0.

icechunk 2.3.0 needs Python >= 3.12 while the project (and its test environment) runs on 3.11,
so the reference lives in a venv of its own, built on first use under
``~/.cache/pyicechunk/oracle-icechunk-2.3.0/`` (``PYICECHUNK_ORACLE_CACHE`` moves it) and reused
by every later run. A stamp file written last records what was installed with which
interpreter; a missing or different stamp, or a venv whose interpreter is gone, means rebuild.
The build holds a file lock, so xdist workers that start together build it once between them.

The interpreter is the one ``PYICECHUNK_PYTHON312`` names (and only that one, when it is set),
else the first of ``python3.12`` / ``python3.13`` on PATH that runs, else a pyenv version >= 3.12
(pyenv's shims answer only when ``PYENV_VERSION`` selects a version).

Stdlib only, so that the benchmarks can load this file without the test dependencies::

    python tests/oracle/environment.py        # prints the venv's python, building it if needed
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

# What the oracle venv holds. zarr, numcodecs and numpy are pinned to the versions the project's
# own test environment is developed with, so both sides of a parity test run the same zarr.
PINS: tuple[str, ...] = (
    "icechunk==2.3.0",
    "zarr==3.1.6",
    "numcodecs==0.16.6",
    "numpy==2.4.6",
)
ICECHUNK_VERSION = "2.3.0"
MIN_PYTHON = (3, 12)
PYTHON_ENV = "PYICECHUNK_PYTHON312"
CACHE_ENV = "PYICECHUNK_ORACLE_CACHE"
_BUILD_TIMEOUT = 900  # seconds for venv + pip install on a slow mirror
_PROBE = "import sys; print(sys.executable); print('%d.%d.%d' % sys.version_info[:3])"
# Bump when the layout of the cache directory or the stamp changes.
_LAYOUT = 1


class OracleUnavailable(RuntimeError):
    """icechunk 2.3.0 cannot be run here: no Python >= 3.12, or its venv could not be built."""


def cache_dir() -> Path:
    """Where the venv, its stamp, its lock and the last build log live."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "pyicechunk" / f"oracle-icechunk-{ICECHUNK_VERSION}"


def _venv_python(root: Path) -> Path:
    return root / "venv" / "bin" / "python"


def _probe(cmd: list[str], env: dict[str, str] | None = None) -> tuple[str, tuple[int, ...]] | None:
    """``(real executable, version)`` of the interpreter ``cmd`` starts, or None if it fails."""
    try:
        done = subprocess.run(
            [*cmd, "-c", _PROBE], capture_output=True, text=True, timeout=30, env=env
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = done.stdout.split()
    if done.returncode != 0 or len(lines) != 2:
        return None
    return lines[0], tuple(int(p) for p in lines[1].split("."))


def _how_to_get_one(tried: list[str]) -> str:
    return (
        f"icechunk {ICECHUNK_VERSION}, the second reference the tests compare pyicechunk with, "
        f"needs Python >= {MIN_PYTHON[0]}.{MIN_PYTHON[1]}, and none was found (tried: "
        f"{'; '.join(tried)}). Install Python 3.12 (for example `pyenv install 3.12`, "
        "`uv python install 3.12`, or your system's python3.12 package) and point "
        f"{PYTHON_ENV} at its interpreter, e.g. `export {PYTHON_ENV}=/usr/bin/python3.12`; "
        "the tests then build the reference's environment on first use."
    )


def find_python312() -> Path:
    """The real path of a Python >= 3.12 interpreter, found as the module docstring says.

    Raises
    ------
    OracleUnavailable
        When none is found; the message says how to get one.
    """
    tried: list[str] = []
    explicit = os.environ.get(PYTHON_ENV)
    if explicit:
        found = _probe([explicit])
        if found and found[1][:2] >= MIN_PYTHON:
            return Path(found[0])
        state = "not a Python >= 3.12" if found else "does not run"
        raise OracleUnavailable(_how_to_get_one([f"{PYTHON_ENV}={explicit} ({state})"]))
    tried.append(f"{PYTHON_ENV} (unset)")
    for name in ("python3.12", "python3.13"):
        exe = shutil.which(name)
        found = _probe([exe]) if exe else None
        if found and found[1][:2] >= MIN_PYTHON:
            return Path(found[0])
        tried.append(f"{name} on PATH ({'does not run' if exe else 'absent'})")
    pyenv = shutil.which("pyenv")
    versions: list[str] = []
    if pyenv:
        done = subprocess.run(
            [pyenv, "versions", "--bare"], capture_output=True, text=True, timeout=30
        )
        for line in done.stdout.split():
            parts = line.split(".")
            if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
                if (int(parts[0]), int(parts[1])) >= MIN_PYTHON:
                    versions.append(line)
    # Oldest first: 3.12 is the version the reference's behaviour was recorded with.
    versions.sort(key=lambda v: tuple(int(p) if p.isdigit() else 0 for p in v.split(".")))
    for version in versions:
        major_minor = ".".join(version.split(".")[:2])
        env = {**os.environ, "PYENV_VERSION": version}
        found = _probe([f"python{major_minor}"], env=env)
        if found and found[1][:2] >= MIN_PYTHON:
            return Path(found[0])
    tried.append(f"pyenv versions >= 3.12 ({', '.join(versions) or 'none'})")
    raise OracleUnavailable(_how_to_get_one(tried))


def _wanted_stamp(base: Path | None) -> dict[str, object]:
    return {"layout": _LAYOUT, "pins": list(PINS), "base": None if base is None else str(base)}


def _stamp_mark(root: Path) -> object:
    """Identifies one build (each stamp records when it was made), or None before the first."""
    stamp = _read_stamp(root)
    return None if stamp is None else stamp.get("built")


def _read_stamp(root: Path) -> dict[str, object] | None:
    try:
        stamp: dict[str, object] = json.loads((root / "stamp.json").read_text())
    except (OSError, ValueError):
        return None
    return stamp


def _is_current(root: Path) -> bool:
    """Whether the venv under ``root`` was fully built with :data:`PINS` and still runs."""
    stamp = _read_stamp(root)
    if stamp is None or not _venv_python(root).exists():  # exists() is False for a broken link
        return False
    wanted = _wanted_stamp(None)
    if stamp.get("layout") != wanted["layout"] or stamp.get("pins") != wanted["pins"]:
        return False
    explicit = os.environ.get(PYTHON_ENV)
    if explicit:
        # A different interpreter was asked for explicitly: rebuild with that one.
        found = _probe([explicit])
        return found is not None and os.path.realpath(found[0]) == os.path.realpath(
            str(stamp.get("base"))
        )
    return True


def _build(root: Path) -> None:
    """Create the venv under ``root`` from scratch; the stamp goes last, when all of it works."""
    base = find_python312()  # before removing anything: a failed search leaves the old venv
    (root / "stamp.json").unlink(missing_ok=True)
    shutil.rmtree(root / "venv", ignore_errors=True)
    log = root / "build.log"
    python = _venv_python(root)
    steps = [
        [str(base), "-m", "venv", str(root / "venv")],
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *PINS],
        [
            str(python),
            "-c",
            f"import icechunk; assert icechunk.__version__ == {ICECHUNK_VERSION!r}",
        ],
    ]
    with open(log, "a") as out:
        start = out.tell()
        out.write(f"# build {time.strftime('%Y-%m-%d %H:%M:%S')} with {base}\n")
        for step in steps:
            out.write(f"$ {' '.join(step)}\n")
            out.flush()
            try:
                done = subprocess.run(
                    step, stdout=out, stderr=subprocess.STDOUT, timeout=_BUILD_TIMEOUT
                )
            except subprocess.TimeoutExpired:
                raise OracleUnavailable(
                    f"building the icechunk {ICECHUNK_VERSION} venv timed out after "
                    f"{_BUILD_TIMEOUT} s at `{' '.join(step)}`; see {log}"
                ) from None
            if done.returncode != 0:
                tail = log.read_text()[start:][-2000:]
                raise OracleUnavailable(
                    f"building the icechunk {ICECHUNK_VERSION} venv failed at "
                    f"`{' '.join(step)}` (exit {done.returncode}); it needs Python >= 3.12 "
                    f"({base}) and access to a package index. Log ({log}):\n{tail}"
                )
    stamp = {**_wanted_stamp(base), "built": time.time_ns()}
    tmp = root / "stamp.json.tmp"
    tmp.write_text(json.dumps(stamp))
    os.replace(tmp, root / "stamp.json")


def ensure_venv(*, rebuild: bool = False) -> Path:
    """The oracle venv's python, building the venv first if it is missing, stale or broken.

    Parameters
    ----------
    rebuild
        Build it again even if the stamp says it is current (after it was found broken).

    Returns
    -------
    Path
        The venv's ``bin/python``, which has icechunk 2.3.0, zarr and numpy.

    Raises
    ------
    OracleUnavailable
        No Python >= 3.12 was found, or the build failed; the message says why and what to do.
    """
    root = cache_dir()
    if not rebuild and _is_current(root):
        return _venv_python(root)  # the common case: no lock, no subprocess
    root.mkdir(parents=True, exist_ok=True)
    mark_before = _stamp_mark(root)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # several xdist workers: one builds, the others wait
        # Another worker may have rebuilt it while this one waited for the lock.
        rebuilt_meanwhile = _stamp_mark(root) != mark_before
        if not _is_current(root) or (rebuild and not rebuilt_meanwhile):
            _build(root)
    return _venv_python(root)


def oracle_python() -> str:
    """The path of a Python (>= 3.12) that has icechunk 2.3.0, for launching worker processes.

    Builds the cached venv on first use (see :func:`ensure_venv`). Benchmarks run their
    icechunk 2.3.0 measurements as ``[oracle_python(), "benchmarks/cases.py", ...]``.
    """
    return str(ensure_venv())


if __name__ == "__main__":
    try:
        print(oracle_python())
    except OracleUnavailable as exc:
        sys.exit(str(exc))

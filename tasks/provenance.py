"""What every result records so it can be reproduced: seed, data hash, code and library versions."""

from __future__ import annotations

import platform
import subprocess
from datetime import UTC, datetime
from functools import cache
from importlib import metadata
from pathlib import Path

PACKAGES = (
    "strategy-lab",
    "prefect",
    "torch",
    "pytorch-lightning",
    "vectorbt",
    "numba",
    "numpy",
    "pandas",
    "pydantic",
    "anthropic",
)
REPO = Path(__file__).resolve().parents[1]


@cache
def code_version() -> str:
    """Git commit of the code (with '+dirty' for uncommitted changes), or the package version."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return f"strategy-lab {library_versions().get('strategy-lab', 'unknown')}"


@cache
def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def provenance(seed: int, data_sha256: str, data_source: str) -> dict:
    return {
        "seed": seed,
        "data_sha256": data_sha256,
        "data_source": data_source,
        "code_version": code_version(),
        "libraries": library_versions(),
        "platform": platform.platform(),
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }

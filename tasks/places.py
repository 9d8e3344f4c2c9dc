"""Where Strategy Lab keeps what every process, and every machine of a fleet, must reach.

One setting moves all of it: ``$STRATLAB_SHARED_DIR`` (default: the repository checkout). Point it at a
folder every worker mounts (NFS, a shared volume) and the contracts and their runs, the reports, the
exports and the cached step results are shared; a worker's home directory holds only its own process
records (``$STRATLAB_HOME``: stack.json, logs). Each folder can still be set on its own:

=========================  ===================================  =============================
folder                     variable                             default
=========================  ===================================  =============================
contracts and their runs   ``$STRATLAB_STRATEGIES_DIR``         ``<shared>/strategies``
campaign and sweep reports ``$STRATLAB_REPORTS_DIR``            ``<shared>/reports``
exports                    ``$STRATLAB_EXPORTS_DIR``            ``<shared>/exports``
cached step results        ``$STRATLAB_STEP_RESULTS_DIR``       ``<shared>/step-results``
=========================  ===================================  =============================
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_ENV = "STRATLAB_SHARED_DIR"


def _setting(variable: str) -> Path | None:
    value = os.environ.get(variable, "").strip()
    return Path(value).expanduser() if value else None


def home() -> Path:
    """This machine's own records (``$STRATLAB_HOME``, default ``~/.stratlab``): what `stratlab up`
    started, its logs, the results signing key. Never the shared results."""
    return _setting("STRATLAB_HOME") or Path.home() / ".stratlab"


def shared_dir() -> Path:
    """``$STRATLAB_SHARED_DIR``, or the repository checkout on a single machine."""
    return _setting(SHARED_ENV) or REPO


def strategies_dir() -> Path:
    """Contracts (``<id>.yaml``) and their run folders."""
    return _setting("STRATLAB_STRATEGIES_DIR") or shared_dir() / "strategies"


def reports_dir() -> Path:
    """Campaign and sweep reports."""
    return _setting("STRATLAB_REPORTS_DIR") or shared_dir() / "reports"


def exports_dir() -> Path:
    """Pine and cTrader exports, one folder per strategy."""
    return _setting("STRATLAB_EXPORTS_DIR") or shared_dir() / "exports"


def step_results_dir() -> Path:
    """The cached results of finished steps, read back when a killed cycle is run again (on any worker)."""
    return _setting("STRATLAB_STEP_RESULTS_DIR") or shared_dir() / "step-results"

"""How the plain functions of `tasks/` become Prefect tasks: the one place that says what is cached.

A *cached* step persists its result and is keyed by its inputs' content and the project's code, not by
the run: when a cycle crashes (a killed worker, a lost machine) and is run again with the same
parameters, the steps that had finished are read back instead of redone. Steps whose inputs hide state
(a data folder named by an environment variable, an API client) or whose repetition must be a new event
(a call to Claude) are *uncached*. Results go to signed files under ``$STRATLAB_STEP_RESULTS_DIR``
(default ``<shared>/step-results``; see ``tasks/places.py``), which every worker of a fleet can reach, and
are verified before they are unpickled (``tasks/step_store.py``).

Operator switch: ``STRATLAB_STEP_CACHE`` (default on). ``0``, ``off``, ``false`` or ``no`` (any case)
turns the step cache off: `cached_step` then builds plain tasks with Prefect's ``NO_CACHE`` that neither
read nor persist results, so every step is computed again (for timing computation, or when a cached
result is suspect). It is read when `cached_step` builds a task, i.e. when ``tasks.*`` is imported, so
set it in the environment of the process before it starts (``STRATLAB_STEP_CACHE=0 stratlab cycle ...``,
or the worker's environment: its flow-run processes inherit it); changing it later in a running process
does not affect tasks already built.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE, CacheKeyFnPolicy
from pydantic import BaseModel

from tasks.provenance import REPO, library_versions
from tasks.step_store import step_store

CACHE_FOR = timedelta(days=7)
STEP_CACHE_ENV = "STRATLAB_STEP_CACHE"
_OFF = frozenset({"0", "off", "false", "no"})


def step_cache_enabled() -> bool:
    """Whether ``$STRATLAB_STEP_CACHE`` leaves the step cache on (unset or anything but 0/off/false/no)."""
    return os.environ.get(STEP_CACHE_ENV, "").strip().lower() not in _OFF


def content_hash(value: Any) -> str:
    """A hash of what a value holds. Prefect's default hashes a DataFrame through its pickle, which
    changes with memory layout (a copy, or one read back from the cache), so a step fed by a cached
    frame would never hit; here frames are hashed by index, columns and values."""
    digest = hashlib.sha256()

    def feed(v: Any) -> None:
        if isinstance(v, pd.DataFrame):
            digest.update(json.dumps([str(c) for c in v.columns]).encode())
            digest.update(pd.util.hash_pandas_object(v, index=True).to_numpy().tobytes())
        elif isinstance(v, pd.Series):
            digest.update(pd.util.hash_pandas_object(v, index=True).to_numpy().tobytes())
        elif isinstance(v, BaseModel):
            digest.update(v.model_dump_json().encode())
        elif dataclasses.is_dataclass(v) and not isinstance(v, type):
            feed(dataclasses.asdict(v))
        elif isinstance(v, dict):
            for k in sorted(v, key=str):
                digest.update(str(k).encode())
                feed(v[k])
        elif isinstance(v, list | tuple):
            digest.update(f"[{len(v)}".encode())
            for item in v:
                feed(item)
        elif callable(v) and hasattr(getattr(v, "fn", v), "__qualname__"):
            # A function (or a Prefect task) is named, not repr'd: its repr holds a memory address that
            # differs in every process, so a step given one would never be found again after a crash.
            # Its code is in code_hash().
            fn = getattr(v, "fn", v)
            digest.update(f"{fn.__module__}.{fn.__qualname__}".encode())
        else:
            digest.update(repr(v).encode())

    feed(value)
    return digest.hexdigest()


@functools.cache
def code_hash() -> str:
    """The source of every module a step can run, and the library versions: a change to any helper
    (not only the task function itself, as Prefect's TASK_SOURCE sees it) invalidates cached results."""
    digest = hashlib.sha256(json.dumps(library_versions(), sort_keys=True).encode())
    for package in ("tasks", "strategy_contract"):
        for path in sorted((REPO / package).rglob("*.py")):
            digest.update(path.relative_to(REPO).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _step_key(context: Any, parameters: dict[str, Any]) -> str:
    return f"{context.task.name}-{code_hash()[:16]}-{content_hash(parameters)}"


def cached_step(fn: Callable, name: str):
    """A step whose result is persisted and keyed by content, or an uncached one when the switch is off."""
    if not step_cache_enabled():
        return uncached_step(fn, name)
    policy = CacheKeyFnPolicy(cache_key_fn=_step_key)
    step = task(fn, name=name, persist_result=True, cache_policy=policy, cache_expiration=CACHE_FOR)
    # Set after construction: Task() accepts only a block saved on the server, and this one needs no
    # server (its folder and key are settings of the process; see tasks/step_store.py).
    step.result_storage = step_store()
    return step


def uncached_step(fn: Callable, name: str):
    return task(fn, name=name, cache_policy=NO_CACHE)

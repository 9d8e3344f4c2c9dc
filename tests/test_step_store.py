"""Cached step results are signed: a record written by anyone without the lab's key is never unpickled,
whatever serializer it names; the step is computed again instead."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from prefect import flow

from tasks.edge import cached_step
from tasks.places import step_results_dir
from tasks.step_store import KEY_ENV, MAGIC, SignedResultStorage, UntrustedResult, sign, verify

CALLS: list[int] = []


def _square(x: int) -> int:
    CALLS.append(x)
    return x * x


square = cached_step(_square, "square-for-test")


@flow
def squares(x: int) -> int:
    return square(x)


def _record(x: int) -> Path:
    """The result file of square(x): the newest one written."""
    files = [p for p in step_results_dir().iterdir() if p.name.startswith("square-for-test")]
    return max(files, key=lambda p: p.stat().st_mtime)


class _Marker:
    """Unpickling this writes a file: what an attacker's payload would do, harmlessly."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.write_text, (Path(self.path), "pwned"))


def test_a_result_is_signed_and_read_back_on_the_next_run(prefect_api):
    CALLS.clear()
    assert squares(7) == 49 and squares(7) == 49
    assert CALLS == [7]  # the second run read the stored result
    assert _record(7).read_bytes().startswith(MAGIC)


def test_a_forged_record_naming_pickle_is_never_unpickled(prefect_api, tmp_path):
    CALLS.clear()
    assert squares(11) == 121
    path = _record(11)
    marker = tmp_path / "marker"
    forged = (
        b'{"metadata": {"storage_key": "%s", "expiration": null, "serializer": {"type": "pickle", '
        b'"picklelib": "pickle"}, "prefect_version": "3.8.8", "storage_block_id": null}, "result": "%s"}'
    ) % (str(path).encode(), __import__("base64").b64encode(pickle.dumps(_Marker(str(marker)))))
    path.write_bytes(forged)  # what someone with write access to a shared result folder could do
    assert squares(11) == 121
    assert not marker.exists(), "the forged record was unpickled"
    assert CALLS == [11, 11]  # not trusted: computed again
    assert verify(path.name, path.read_bytes())  # and written anew, signed


def test_a_record_under_another_key_or_moved_to_another_step_is_not_trusted(monkeypatch):
    content = sign("square-a", b"record")
    assert verify("square-a", content) == b"record"
    with pytest.raises(UntrustedResult, match="does not match"):
        verify("square-b", content)  # a valid record moved to another step's key
    with pytest.raises(UntrustedResult, match="does not match"):
        verify("square-a", content[:-1] + b"X")  # changed or half-written bytes
    with pytest.raises(UntrustedResult, match="not signed"):
        verify("square-a", b"record")
    monkeypatch.setenv(KEY_ENV, "k" * 40)
    with pytest.raises(UntrustedResult, match="does not match"):
        verify("square-a", content)  # another worker's key


def test_a_short_key_is_refused_by_name(monkeypatch, tmp_path):
    monkeypatch.setenv(KEY_ENV, "short")
    with pytest.raises(ValueError, match=f"{KEY_ENV}: the key has 5 characters; give at least 32"):
        SignedResultStorage(basepath=str(tmp_path)).write_path("x", b"data")


def test_a_step_given_a_function_has_the_same_key_in_every_process():
    """The campaign's market step takes the training step as a parameter. Hashed by its repr (which holds
    a memory address), the key changed in every process: a campaign killed mid-iteration and resumed
    never found the step it had finished."""
    import subprocess
    import sys

    from tests.conftest import REPO

    probe = (
        "from tasks.edge import content_hash; from tasks.sweep.groups import train_group; "
        "from flows.sweep import sweep_train; "
        "print(content_hash({'train': train_group, 'task': sweep_train, 'seed': 7}))"
    )
    keys = {
        subprocess.run(
            [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    }
    assert len(keys) == 1, keys

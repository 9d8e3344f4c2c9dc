"""Atomic saves against a real filesystem fault: a file-size limit (RLIMIT_FSIZE) makes the kernel refuse
the write half-way with EFBIG. The atomic writers leave the old file whole and no temp file behind; a
plain write over the same file, under the same limit, leaves it cut short."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LIMIT = 4096  # bytes any one file of the child may reach
OLD = b'{"version": 1, "note": "the saved state before the interrupted save"}\n'
NEW = {"version": 2, "rows": ["x" * 100] * 200}  # about 21 kB, far over the limit

WRITES = {  # each a statement run in the child, under the limit
    "atomic_write_json": "atomic_write_json(path, new)",
    "atomic_write_text": "atomic_write_text(path, json.dumps(new))",
    "atomic_write_bytes": "atomic_write_bytes(path, json.dumps(new).encode())",
    "plain open().write()": "with open(path, 'w') as fh: fh.write(json.dumps(new))",
}


def save_under_limit(path: Path, how: str) -> int | None:
    """Run one save in a child whose files may not exceed LIMIT bytes; the errno it failed with."""
    script = textwrap.dedent(
        f"""
        import json, resource, signal, sys
        from strategy_contract.io import atomic_write_bytes, atomic_write_json, atomic_write_text
        path, new = sys.argv[1], json.loads(sys.argv[2])
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, ({LIMIT}, {LIMIT}))
        try:
            {WRITES[how]}
        except OSError as exc:
            print(json.dumps(exc.errno))
        else:
            print("null")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(path), json.dumps(NEW)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("how", ["atomic_write_json", "atomic_write_text", "atomic_write_bytes"])
def test_an_interrupted_atomic_save_keeps_the_old_file_and_leaves_no_temp_file(tmp_path, how):
    path = tmp_path / "cycle.json"
    path.write_bytes(OLD)
    assert len(json.dumps(NEW)) > 4 * LIMIT

    assert save_under_limit(path, how) == errno.EFBIG

    assert path.read_bytes() == OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cycle.json"]


def test_a_plain_save_under_the_same_fault_corrupts_the_file(tmp_path):
    path = tmp_path / "cycle.json"
    path.write_bytes(OLD)

    assert save_under_limit(path, "plain open().write()") == errno.EFBIG

    cut = path.read_bytes()
    assert cut != OLD and len(cut) <= LIMIT and json.dumps(NEW).encode().startswith(cut)
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut)


def test_within_the_limit_the_atomic_save_replaces_the_file(tmp_path):
    """The same child and limit with a small content: the fault, not the set-up, made the others fail."""
    path = tmp_path / "cycle.json"
    path.write_bytes(OLD)
    script = textwrap.dedent(
        f"""
        import resource, signal, sys
        from strategy_contract import atomic_write_json
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, ({LIMIT}, {LIMIT}))
        atomic_write_json(sys.argv[1], {{"version": 2}})
        """
    )
    subprocess.run([sys.executable, "-c", script, str(path)], cwd=REPO, check=True, timeout=120)
    assert json.loads(path.read_text()) == {"version": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cycle.json"]

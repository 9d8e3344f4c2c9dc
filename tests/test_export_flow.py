"""The `export_strategy` flow on Prefect's API (the session's test server): the pilot's files, its
export.json, the run's markdown artifact read back through the client, and bad input failing the run
before anything is written."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import REPO

from tasks.export.files import TARGETS


def run_artifacts(run_id) -> list:
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )
    return list(found)


def stored_state(run_id):
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(run_id).state


def test_the_pilot_is_exported_with_its_summary_and_an_artifact(prefect_api, tmp_path):
    from flows.export_strategy import export_strategy

    state = export_strategy("ema_cross_atr", out=str(tmp_path), return_state=True)
    assert state.is_completed(), state.message
    summary = state.result()
    assert summary == json.loads((tmp_path / "export.json").read_text())
    assert set(summary["targets"]) == set(TARGETS)  # target "all": every built one
    assert summary["targets"]["pine"]["file"] == "ema_cross_atr.pine"
    for result in summary["targets"].values():
        assert result["file"] and (tmp_path / result["file"]).is_file(), result
    assert str(tmp_path) in stored_state(state.state_details.flow_run_id).message  # where the files are

    [artifact] = [a for a in run_artifacts(state.state_details.flow_run_id) if a.type == "markdown"]
    assert artifact.type == "markdown" and artifact.key == "export-ema-cross-atr"
    diagnostics = [d for result in summary["targets"].values() for d in result["diagnostics"]]
    assert diagnostics  # the pilot's slippage is an approximation on both targets
    for name, result in summary["targets"].items():
        assert f"## {name}: `{result['file']}`" in artifact.data
    for d in diagnostics:
        assert f"| {d['severity']} | `{d['field']}` | {d['message']} |" in artifact.data


def test_one_target_writes_only_its_file(prefect_api, tmp_path):
    from flows.export_strategy import export_strategy

    summary = export_strategy("ema_cross_atr", target="pine", out=str(tmp_path))
    assert list(summary["targets"]) == ["pine"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ema_cross_atr.pine", "export.json"]


def test_an_unsafe_name_fails_the_run_naming_strategy_id_and_writes_nothing(prefect_api, tmp_path):
    from flows.export_strategy import export_strategy

    state = export_strategy("../../etc/passwd", out=str(tmp_path / "x"), return_state=True)
    assert state.is_failed()
    stored = stored_state(state.state_details.flow_run_id)
    assert stored.is_failed() and "strategy_id" in stored.message and "not a safe name" in stored.message
    assert not (tmp_path / "x").exists()
    assert not [a for a in run_artifacts(state.state_details.flow_run_id) if a.type == "markdown"]


def test_the_model_file_reaches_the_exporter(prefect_api, tmp_path):
    """A neuro-fuzzy contract with a checkpoint that is not there: the run fails naming it (so the flow
    passed it on), and writes nothing."""
    from flows.export_strategy import export_strategy

    missing = tmp_path / "missing.ckpt"
    state = export_strategy(
        "fuzzy_momentum_mlp", model_file=str(missing), out=str(tmp_path / "x"), return_state=True
    )
    assert state.is_failed() and f"no checkpoint at {missing}" in state.message
    assert not (tmp_path / "x").exists()


def test_the_command_passes_model_and_lists_the_built_targets(tmp_path):
    from stratlab.export import BUILT_TARGETS

    assert BUILT_TARGETS == TARGETS  # the help text of --target (kept out of `stratlab --help`'s imports)

    def stratlab(*args):
        return subprocess.run(
            [sys.executable, "-m", "stratlab", "export", *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            env={**os.environ, "COLUMNS": "400"},
        )

    assert "|".join((*TARGETS, "all")) in stratlab("--help").stdout
    missing = tmp_path / "missing.ckpt"
    done = stratlab("fuzzy_momentum_mlp", "--model", str(missing), "--out", str(tmp_path / "x"))
    assert done.returncode == 1 and f"no checkpoint at {missing}" in done.stderr
    assert not (tmp_path / "x").exists()

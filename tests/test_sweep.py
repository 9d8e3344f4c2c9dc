"""Sweeps: the same numbers as single backtests, the best combination found, the same table whatever
the chunking or the cluster, Optuna reproducible and blind to the held-out bars, clear errors."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import STRATEGIES

from strategy_contract import Strategy, load_strategy
from strategy_contract.models import PercentStop
from tasks.backtest import bars_per_year, column_metrics, run_backtest, simulate, trade_list
from tasks.data import load_bars
from tasks.features import feature_frame
from tasks.settings import enforce_operator_rules
from tasks.splits import split_bounds
from tasks.sweep.evaluate import simulate_chunk
from tasks.sweep.space import Space

MARKETS = [("EURUSD", "1h"), ("AAPL", "1d")]


def random_combos(space: Space, n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    combos = pd.DataFrame({k: rng.choice(v, size=3 * n) for k, v in space.axes.items()})
    return space.valid(combos).drop_duplicates().head(n).reset_index(drop=True)


def close(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, str) or isinstance(b, str) or not math.isfinite(a) or not math.isfinite(b):
        return a == b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


@pytest.mark.parametrize("market", MARKETS, ids=lambda m: "_".join(m))
@pytest.mark.parametrize("contract", ["ema_cross_atr", "bb_rsi_reversion"])
def test_sweep_trades_and_metrics_equal_single_backtests(contract, market):
    """Ten random combinations in one vectorized pass against ten single backtests of the contract with
    those parameters: every trade (times, prices, P&L) and every metric, exactly."""
    base = enforce_operator_rules(load_strategy(STRATEGIES / f"{contract}.yaml").on_market(*market))
    bars = load_bars(*market)
    bounds = split_bounds(len(bars), base.data)
    start, stop = bounds.selection(False)
    per_year = bars_per_year(bars.index)
    combos = random_combos(Space.of(base), 10, seed=len(contract))

    sweep = simulate_chunk(base, bars, combos, start, stop)
    table = column_metrics(sweep, per_year)
    traded = 0
    for j, row in combos.iterrows():
        one = base.with_params(row.to_dict())
        frame = feature_frame(bars, one)
        single = simulate(one, bars, frame, start, stop)
        want = trade_list(single)
        got = trade_list(sweep, column=j)
        assert [(t.entry_time, t.exit_time) for t in got] == [(t.entry_time, t.exit_time) for t in want]
        for g, w in zip(got, want, strict=True):
            for field in ("entry_price", "exit_price", "size", "fees", "pnl", "return_pct"):
                assert close(getattr(g, field), getattr(w, field)), (j, field)
        report = run_backtest(one, bars, frame, bounds).selection
        for metric, value in table.iloc[j].items():
            expected = getattr(report, metric)
            assert close(None if np.isnan(value) else float(value), expected), (j, metric, value, expected)
        traded += len(want)
    assert traded > 20  # the combinations trade: the comparison is not of empty lists


def small_space_contract(tmp_path, name="ema_cross_atr", **space) -> str:
    """The shipped contract with only the given optimisation axes enabled."""
    data = yaml.safe_load((STRATEGIES / f"{name}.yaml").read_text())
    for key, opt in data["optimization_space"].items():
        opt.update(space.get(key, {"enabled": False}))
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


EMA_SPACE = {
    "ema_fast.window": {"min": 8, "max": 20, "step": 4, "value": 12},
    "ema_slow.window": {"min": 40, "max": 80, "step": 20, "value": 60},
    "risk_model.stop_loss.multiple": {"min": 1.5, "max": 2.5, "step": 1.0, "value": 1.5},
}


def run_sweep(**fields):
    from flows.sweep import SweepParams, sweep

    return sweep(SweepParams(**fields))


def results(result) -> pd.DataFrame:
    from pathlib import Path

    return pd.read_parquet(Path(result.report_dir) / "results.parquet").sort_values(
        "trial", ignore_index=True
    )


@pytest.fixture
def reports(tmp_path, monkeypatch):
    monkeypatch.setenv("STRATLAB_REPORTS_DIR", str(tmp_path / "reports"))
    return tmp_path / "reports"


def test_a_sweep_run_reports_every_combination_and_its_best_contract(prefect_api, tmp_path, reports):
    file = small_space_contract(tmp_path, **EMA_SPACE)
    result = run_sweep(strategy_file=file, top=5)

    assert (result.grid_size, result.trials, result.evaluated) == (24, 24, 24)
    assert result.selection_part == "train+validation" and result.end < "2017-10-20"  # held out after
    folder = reports / "sweeps" / result.sweep_id
    assert sorted(p.name for p in folder.iterdir()) == [
        "best.yaml",
        "heatmap.png",
        "leaderboard.csv",
        "results.parquet",
        "sweep.json",
    ]
    table = results(result)
    assert len(table) == 24 and table["score"].notna().any()
    best = table.loc[table["score"].idxmax()]
    board = pd.read_csv(folder / "leaderboard.csv")
    assert len(board) == 5 and board["score"].iloc[0] == pytest.approx(best["score"], rel=1e-12)
    assert board["score"].is_monotonic_decreasing
    contract = load_strategy(folder / "best.yaml")
    assert contract.indicator("ema_fast").params["window"] == best["ema_fast.window"]
    assert contract.risk_model.stop_loss.multiple == best["risk_model.stop_loss.multiple"]
    assert (folder / "heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((folder / "sweep.json").read_text())
    assert summary["trials"] == 24 and summary["provenance"]["data_sha256"]
    assert list(summary["importance"])[:2] == [k for k in result.importance][:2]

    # the best combination's numbers are those of a single backtest of best.yaml
    bars = load_bars("EURUSD", "1h")
    report = run_backtest(
        contract, bars, feature_frame(bars, contract), split_bounds(len(bars), contract.data)
    )
    assert report.selection.sharpe == pytest.approx(best["sharpe"], rel=1e-9)
    assert report.selection.trades == best["trades"]

    # the Prefect UI shows the leaderboard and the heatmap
    from prefect.artifacts import Artifact

    key = result.sweep_id.lower().replace("_", "-")
    board_artifact = Artifact.get(f"{key}-leaderboard")
    summary_artifact = Artifact.get(f"{key}-summary")
    assert board_artifact is not None and len(json.loads(board_artifact.data)) == 5
    assert "data:image/png;base64," in summary_artifact.data


def test_chunks_of_any_size_and_a_dask_cluster_give_the_same_table(prefect_api, tmp_path, reports):
    file = small_space_contract(tmp_path, **EMA_SPACE)
    whole = results(run_sweep(strategy_file=file))
    forced = run_sweep(strategy_file=file, chunk=5)
    assert forced.chunks == 5  # 24 combinations, 5 per chunk
    pd.testing.assert_frame_equal(results(forced), whole)

    on_dask = run_sweep(strategy_file=file, chunk=7, dask="local:2")
    assert on_dask.dask == "local:2" and on_dask.chunks == 4
    pd.testing.assert_frame_equal(results(on_dask), whole)


def synthetic_market(folder) -> None:
    """Forty identical episodes: a signal bar (volume 2), then the price rises to 4.5% above the entry
    and falls to 20% below it. A take-profit of 4% is the largest that is ever reached, so it has the
    best total return: smaller ones bank less, larger ones ride the fall to the stop."""
    rows = []
    for _ in range(40):
        rows += [(100, 100, 100, 100, 2.0)]  # signal at this close -> entry at the next open, 100
        rows += [(100, 101, 99.9, 101, 1), (101, 102.5, 100.8, 102, 1), (102, 104.5, 101.9, 104, 1)]
        rows += [(104, 104, 80, 81, 1), (81, 82, 80, 81, 1)]  # any stop up to 19% is hit here
        rows += [(100, 100, 100, 100, 1)] * 4
    index = pd.date_range("2020-01-01", periods=len(rows), freq="D", tz="UTC", name="time")
    frame = pd.DataFrame(rows, columns=["open", "high", "low", "close", "volume"], index=index)
    folder.mkdir()
    frame.to_csv(folder / "SYNTH_1d.csv")


def test_the_best_combination_known_by_construction_is_found(prefect_api, tmp_path, reports, monkeypatch):
    synthetic_market(tmp_path / "data")
    monkeypatch.setenv("STRATLAB_DATA_DIR", str(tmp_path / "data"))
    contract = {
        "strategy_id": "take_profit_probe",
        "thesis": "a take-profit grid on episodes whose peak is known",
        "markets": ["SYNTH"],
        "timeframes": ["1d"],
        "indicators": [{"id": "sma_2", "type": "sma", "params": {"window": 2}}],
        "entry_rules": [{"left": "volume", "op": ">", "right": 1.5}],
        "risk_model": {
            "stop_loss": {"kind": "percent", "value": 0.1},
            "take_profit": {"kind": "percent", "value": 0.05},
        },
        "optimization_space": {
            "risk_model.take_profit.value": {"min": 0.01, "max": 0.08, "step": 0.01, "value": 0.05},
            "risk_model.stop_loss.value": {"min": 0.05, "max": 0.15, "step": 0.05, "value": 0.1},
        },
        "data": {"embargo_bars": 0},
    }
    path = tmp_path / "probe.yaml"
    path.write_text(yaml.safe_dump(contract))
    result = run_sweep(strategy_file=str(path), objective="total_return")

    best = result.best
    assert best["risk_model.take_profit.value"] == pytest.approx(0.04)
    assert best["trades"] >= 30 and best["win_rate"] == 1.0
    table = results(result)
    others = table[~np.isclose(table["risk_model.take_profit.value"], 0.04)]
    assert (others["total_return"] < best["total_return"]).all()


def test_optuna_is_seeded_and_never_reads_the_held_out_bars(prefect_api, tmp_path, reports, monkeypatch):
    file = str(STRATEGIES / "ema_cross_atr.yaml")  # 326,508 combinations: too many for the grid
    first = run_sweep(strategy_file=file, method="optuna", max_combos=120, batch=40, seed=5)
    again = run_sweep(strategy_file=file, method="optuna", max_combos=120, batch=40, seed=5)
    assert first.trials == 120 and first.evaluated <= 120 and first.grid_size == 326_508
    pd.testing.assert_frame_equal(results(first), results(again))
    keys = Space.of(load_strategy(file)).keys
    other_seed = run_sweep(strategy_file=file, method="optuna", max_combos=120, batch=40, seed=6)
    assert not results(other_seed)[keys].equals(results(first)[keys])  # the seed chooses the sample

    # other held-out bars (a crash after the validation part) change nothing in the sweep
    bars = load_bars("EURUSD", "1h")
    held_out_start = split_bounds(len(bars), load_strategy(file).data).test[0]
    crashed = bars.copy()
    fall = np.linspace(1.0, 0.7, len(bars) - held_out_start)
    for column in ("open", "high", "low", "close"):
        crashed.iloc[held_out_start:, crashed.columns.get_loc(column)] *= fall
    (tmp_path / "data").mkdir()
    crashed.to_csv(tmp_path / "data" / "EURUSD_1h.csv")
    monkeypatch.setenv("STRATLAB_DATA_DIR", str(tmp_path / "data"))
    blind = run_sweep(strategy_file=file, method="optuna", max_combos=120, batch=40, seed=5)
    pd.testing.assert_frame_equal(results(blind), results(first))


def test_model_strategies_train_once_per_group(prefect_api, tmp_path, reports):
    """Two RSI windows feed the model (two trainings); the ATR stop sizes are swept on each model."""
    data = yaml.safe_load((STRATEGIES / "fuzzy_momentum_mlp.yaml").read_text())
    data["model"].update(epochs=4, patience=2)
    data["optimization_space"] = {
        "rsi_14.window": {"min": 12, "max": 16, "step": 4, "value": 12},
        "risk_model.stop_loss.multiple": {"min": 1.5, "max": 3.0, "step": 0.75, "value": 1.5},
    }
    path = tmp_path / "fuzzy.yaml"
    path.write_text(yaml.safe_dump(data))
    result = run_sweep(strategy_file=str(path), min_trades=0, seed=11)
    assert (result.trained_groups, result.evaluated) == (2, 6)
    assert result.selection_part == "validation"

    from tasks.train import train_model

    table = results(result)
    row = table.iloc[4]  # rsi window 16, stop multiple 2.25
    one = enforce_operator_rules(load_strategy(path)).with_params(
        {
            "rsi_14.window": row["rsi_14.window"],
            "risk_model.stop_loss.multiple": row["risk_model.stop_loss.multiple"],
        }
    )
    bars = load_bars("SPX", "1d")
    bounds = split_bounds(len(bars), one.data)
    frame = feature_frame(bars, one)
    outcome = train_model(one, bars, frame, bounds, 11)
    report = run_backtest(one, bars, frame.join(outcome.predictions.add_prefix("model.")), bounds)
    assert row["training_accuracy"] == pytest.approx(outcome.metrics.accuracy, rel=1e-12)
    assert row["total_return"] == pytest.approx(report.selection.total_return, rel=1e-9, abs=1e-12)
    assert row["trades"] == report.selection.trades


def stratlab_sweep(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "stratlab", "sweep", *args], capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({}, "optimization_space: no enabled parameter to sweep"),
        (
            {"ema_fast.window": {"min": 1, "max": 30, "step": 1, "value": 12}},
            "optimization_space.ema_fast.window: range [1.0, 30.0] exceeds the catalog's [2, 400]",
        ),
        (
            {"risk_model.stop_loss.multiple": {"min": 1, "max": 25, "step": 1, "value": 2}},
            "optimization_space.risk_model.stop_loss.multiple: range [1.0, 25.0] exceeds the allowed (0.0, 20.0]",
        ),
        (
            {"ema_fast.window": {"min": 5, "max": 6, "step": 0.5, "value": 5}},
            "optimization_space.ema_fast.window: min 5 and step 0.5 give values that are not whole numbers",
        ),
    ],
)
def test_a_space_that_cannot_be_swept_is_refused_naming_the_field(tmp_path, space, message):
    done = stratlab_sweep("--strategy", small_space_contract(tmp_path, **space))
    assert done.returncode == 1
    assert message in " ".join(done.stderr.split()), done.stderr
    assert "Traceback" not in done.stderr


def test_a_grid_over_the_limit_needs_optuna(tmp_path):
    done = stratlab_sweep("--strategy", str(STRATEGIES / "ema_cross_atr.yaml"), "--max-combos", "1000")
    assert done.returncode == 1
    said = " ".join(done.stderr.split())
    assert "--max-combos: the grid of optimization_space has 326,508 combinations" in said
    assert "use --method optuna" in said


def test_without_stops_one_row_a_bar_gives_the_numbers_of_two():
    """A contract without stops gives vectorbt one row a bar; with a stop too far to be reached (two
    rows a bar) every trade and metric is the same."""
    base = enforce_operator_rules(load_strategy(STRATEGIES / "ema_cross_atr.yaml"))
    data = base.model_dump(mode="json", exclude_unset=True)
    data["risk_model"].pop("take_profit")
    data["optimization_space"] = {k: v for k, v in data["optimization_space"].items() if k.startswith("ema")}
    no_stops = enforce_operator_rules(
        Strategy.model_validate({**data, "risk_model": {**data["risk_model"], "stop_loss": None}})
    )
    far_stop = no_stops.model_copy(
        update={"risk_model": no_stops.risk_model.model_copy(update={"stop_loss": PercentStop(value=0.5)})}
    )
    bars = load_bars("EURUSD", "1h")
    combos = random_combos(Space.of(no_stops), 8, seed=3)
    one_row, two_rows = (simulate_chunk(s, bars, combos, 0, len(bars)) for s in (no_stops, far_stop))
    assert (one_row.rows_per_bar, two_rows.rows_per_bar) == (1, 2)
    pd.testing.assert_frame_equal(column_metrics(one_row, 6000.0), column_metrics(two_rows, 6000.0))
    for j in range(len(combos)):
        assert trade_list(one_row, j) == trade_list(two_rows, j) and len(trade_list(one_row, j)) > 10


def test_a_dask_option_that_names_no_cluster_is_refused(tmp_path):
    file = small_space_contract(tmp_path, **EMA_SPACE)
    for bad in ("local:0", "localhost:8786"):
        done = stratlab_sweep("--strategy", file, "--dask", bad)
        assert done.returncode == 1
        said = " ".join(done.stderr.split())
        assert f"--dask: '{bad}' is neither a scheduler address (tcp://host:8786) nor local:N" in said

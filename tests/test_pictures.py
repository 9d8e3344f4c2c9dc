"""Pictures of results, through the real parts: a research cycle on the shipped EURUSD bars writes
``equity.png`` of the backtest it recorded and shows it in its summary artifact (read back through
Prefect's API), `stratlab strategies show` says where it is, a picture of any other backtest is
refused, and a campaign's report links its score trajectory and walk-forward folds."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from uuid import UUID

import pytest
from conftest import STRATEGIES
from synthetic_markets import trend_bars
from test_campaign import _campaign, lab  # noqa: F401  (lab: the campaign fixture, reused)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_BYTES = 200_000  # inlined in a Markdown artifact: it must stay small


def decoded_size(png: bytes) -> tuple[int, int]:
    """(width, height) of a PNG that decodes whole (Pillow reads every pixel)."""
    from PIL import Image

    assert png[:8] == PNG_SIGNATURE
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        image.load()
        return image.size


def assert_small_picture(png: bytes) -> None:
    width, height = decoded_size(png)
    assert 600 <= width <= 1400 and 300 <= height <= 900, (width, height)
    assert 5_000 < len(png) < MAX_BYTES, len(png)  # not blank, and small enough to inline


def shaded_columns(png: bytes) -> list[int]:
    """Pixel columns that are mostly the held-out shading (its colour at 30% over white)."""
    import numpy as np
    from PIL import Image

    from tasks.observe.pictures import HELD_OUT_COLOR

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(float)
    colour = np.array([int(HELD_OUT_COLOR[i : i + 2], 16) for i in (1, 3, 5)])
    shade = 0.7 * 255 + 0.3 * colour
    share = (np.abs(pixels - shade).max(axis=2) <= 3).mean(axis=0)
    return np.nonzero(share > 0.3)[0].tolist()


@pytest.fixture(scope="module")
def pilot(prefect_api, tmp_path_factory):
    """One completed cycle of the pilot contract on its market (EURUSD 1h), in a private strategies
    folder: (that folder, its CycleResult)."""
    from flows.research_cycle import CycleParams, research_cycle, result_of

    home = tmp_path_factory.mktemp("pictures") / "strategies"
    home.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STRATLAB_STRATEGIES_DIR", str(home))
        state = research_cycle(
            CycleParams(strategy_file=str(STRATEGIES / "ema_cross_atr.yaml")), return_state=True
        )
    result = result_of(state)
    assert state.is_completed(), result.reason
    return home, result


def test_a_completed_cycle_writes_its_equity_picture_and_its_summary_shows_it(pilot):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    _, result = pilot
    folder = Path(result.artifacts["results"])
    picture = folder / "equity.png"
    assert result.artifacts["equity"] == str(picture)
    png = picture.read_bytes()
    assert decoded_size(png) == (1000, 600)
    assert_small_picture(png)
    assert json.loads((folder / "cycle.json").read_text())["artifacts"]["equity"] == str(picture)
    shaded = shaded_columns(png)  # the held-out period: the latest fifth of the bars, at the right
    assert shaded and shaded[0] > 0.6 * 1000, shaded
    assert len(shaded) > 0.9 * (shaded[-1] - shaded[0] + 1), shaded  # one band (grid lines cross it)

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(result.run_id)]))
        )
    [summary] = [a for a in artifacts if a.key == "cycle-ema-cross-atr"]
    images = re.findall(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", summary.data)
    assert images == [base64.b64encode(png).decode()]  # the committed picture, byte for byte


def test_the_picture_is_of_the_recorded_backtest_and_refuses_any_other(pilot):
    from strategy_contract import load_strategy
    from tasks.backtest import BacktestReport
    from tasks.data import load_bars
    from tasks.features import feature_frame
    from tasks.observe.pictures import PictureMismatch, cycle_periods
    from tasks.settings import enforce_operator_rules
    from tasks.splits import split_bounds

    _, result = pilot
    folder = Path(result.artifacts["results"])
    strategy = enforce_operator_rules(load_strategy(folder / "contract.yaml"))  # as the cycle ran it
    recorded = json.loads((folder / "backtest.json").read_text())
    report = BacktestReport.model_validate({k: v for k, v in recorded.items() if k != "provenance"})
    bars = load_bars(strategy.symbol, strategy.timeframe)
    bounds = split_bounds(len(bars), strategy.data)
    frame = feature_frame(bars, strategy)

    selection, held_out = cycle_periods(strategy, bars, frame, bounds, report)
    assert (selection.name, held_out.name) == ("train+validation", "held-out")
    assert held_out.times[0] == bars.index[bounds.test[0]] and held_out.times[-1] == bars.index[-1]
    assert selection.times[-1] < held_out.times[0]
    assert len(held_out.exits) == report.held_out.trades == len(report.held_out_trades)
    assert len(selection.entries) == report.selection.trades + (report.selection.open_position is not None)
    assert held_out.equity[-1] == pytest.approx(report.held_out.final_value, rel=1e-12)

    changed = report.model_copy(update={"held_out": report.held_out.model_copy(update={"final_value": 1.0})})
    with pytest.raises(PictureMismatch, match="held-out curve is not the recorded backtest's: final value"):
        cycle_periods(strategy, bars, frame, bounds, changed)
    fewer = report.model_copy(update={"held_out_trades": report.held_out_trades[1:]})
    with pytest.raises(PictureMismatch, match="held_out_trades"):
        cycle_periods(strategy, bars, frame, bounds, fewer)


def stratlab(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "STRATLAB_STRATEGIES_DIR": str(home), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "stratlab", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_strategies_show_says_where_the_equity_picture_is(pilot, tmp_path):
    home, result = pilot
    picture = str(Path(result.artifacts["results"]) / "equity.png")

    shown = stratlab("strategies", "show", "ema_cross_atr", home=home)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert shown.stdout.splitlines()[-1] == f"equity picture {picture}"
    detail = json.loads(stratlab("strategies", "show", "ema_cross_atr", "--json", home=home).stdout)
    assert detail["equity_png"] == picture

    never_run = tmp_path / "strategies"
    never_run.mkdir()
    (never_run / "ema_cross_atr.yaml").write_bytes((STRATEGIES / "ema_cross_atr.yaml").read_bytes())
    detail = json.loads(stratlab("strategies", "show", "ema_cross_atr", "--json", home=never_run).stdout)
    assert detail["equity_png"] is None
    assert "equity picture" not in stratlab("strategies", "show", "ema_cross_atr", home=never_run).stdout


@pytest.mark.slow
def test_a_campaign_report_links_its_score_trajectory_and_walk_forward_folds(lab):  # noqa: F811
    summary = _campaign(
        lab, trend_bars(1, n=4000), "pictures", trials_per_iteration=30, stop={"max_iterations": 2}
    )
    assert summary.state == "completed" and summary.best is not None
    folder = lab / "reports/campaigns/pictures"
    report = (folder / "report.md").read_text()
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    assert linked == ["trajectory.png", "folds.png"]
    for name in linked:
        assert_small_picture((folder / name).read_bytes())
    assert "## Walk-forward folds" in report

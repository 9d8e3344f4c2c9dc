"""Crash soak: SIGKILL a cycle, a campaign or a worker at a random moment, then check the files and the re-run.

Run (about 25 minutes on 2 cores)::

    .venv/bin/python bench/soak_crash.py [--runs 20] [--seed 7] [--keep]

What it measures. One isolated temporary folder holds everything the soak touches (``STRATLAB_SHARED_DIR``,
the strategies, reports, exports and step-results folders, ``STRATLAB_HOME``, ``PREFECT_HOME``,
``STRATLAB_LEDGER``); the repository's ``strategies/`` and ``reports/`` are never written, and every command
runs from a copy of the code made at the start (the step cache is keyed by the source of ``tasks/`` and
``strategy_contract/``: an edit in the working tree during the soak would otherwise look like a miss). It
starts one real stack with ``stratlab up`` (tests/test_operate.py's ``Stack``): its server records every run,
including the in-process ones, so their task states can be read after their process is dead. Each run is:

- ``cycle``: ``python -m stratlab cycle --strategy <tmp contract> --designer local --assessor local --json``
  in its own process group (fuzzy_momentum_mlp with fewer epochs and a new strategy_id per run, so every
  run computes its own steps);
- ``campaign``: ``python -m stratlab campaign run --prompt ... --market EURUSD:1h --trials 60
  --max-iterations 2 --folds 3 --designer local --seed <per run>``; the re-run is ``--resume <id>`` once the
  campaign has a record, else the same command;
- ``worker``: ``stratlab trigger --strategy <tmp contract>`` runs the cycle on the stack's process worker;
  the worker and every process under it are killed; the re-run is ``stratlab up`` (a new worker) and the
  same trigger.

The kill is SIGKILL to the whole process group (for the worker: every process group under it), after a
delay drawn with the seed between 5% and 95% of an uninterrupted run of that kind, measured first. Then:

1. every file under the strategies, reports, exports and step-results folders is checked: ``.json`` parses,
   ``.yaml`` parses (and a contract validates with ``strategy_contract.load_strategy``), ``.png`` is a whole
   PNG (ends with its IEND chunk), ``.ckpt`` loads as the project loads it (``torch.load(...,
   weights_only=True)["state_dict"]``), ``.parquet``/``.npy``/``.csv`` read back, a step result verifies with
   ``tasks.step_store.verify`` (its storage key is its path in the step-results folder) and holds a JSON
   record; temporary files of atomic writes (``.<name>.<random>.tmp``) outside a staging folder are counted
   as leftovers; staging folders of the dead process are allowed, and must be gone after the re-run;
2. the killed run is marked Crashed on the server (what the stack's heartbeat automation does after
   5 x 30 s without a heartbeat; doing it at once keeps the soak short), then the same command is run to completion:
   it must exit 0 (completed) or 2 (a gate said no); its task runs in the state "Cached" are counted, and
   compared with the steps whose results had been persisted before the kill (new files in the
   step-results folder). A resumed campaign takes the iterations whose files it had written from those
   files, without running them again: they count as read back. The files are checked again after the
   re-run.

The killed run's slot in the global concurrency limits ("research-cycle", "campaign") is freed by the
product itself (a 60 s lease); the server is told to expire leases and answer waiting clients every 1-2 s
so that the re-run waits no longer than the lease.

Prints one markdown row per run and the totals; exits 1 when a file is corrupt, a re-run did not complete,
or a dead run's staging folder survived its re-run.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

import yaml

REPO = Path(__file__).resolve().parents[1]
TEMP_FILE = re.compile(r"^\..+\.tmp$")  # strategy_contract.io.atomic_write_bytes: .<name>.<random>.tmp
PNG_HEAD, PNG_TAIL = b"\x89PNG\r\n\x1a\n", b"IEND\xaeB`\x82"
SNAPSHOT = ("tasks", "flows", "strategy_contract", "stratlab", "deployments", "data", "strategies", "tests")
SNAPSHOT += ("prefect.yaml", "stratlab.toml", "pyproject.toml")
EPOCHS = 20  # fuzzy_momentum_mlp trains 40; 20 keeps a cycle at about 25 s here with training in it
CAMPAIGN_ARGS = ["--prompt", "Trend following with an EMA crossover", "--market", "EURUSD:1h"]
CAMPAIGN_ARGS += ["--trials", "60", "--max-iterations", "2", "--folds", "3", "--designer", "local"]


@dataclass
class Row:
    run: int
    kind: str
    after_s: float = 0.0
    phase: str = "-"
    corrupt: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    outcome: str = "-"
    completed: bool = False
    cached: int = 0
    finished_before_kill: int = 0
    read_back: int = 0  # iterations a resumed campaign took from their files instead of running them again
    stale_stages: list[str] = field(default_factory=list)
    seconds: float = 0.0


class Soak:
    def __init__(self, root: Path, seed: int):
        self.root, self.rng = root, random.Random(seed)
        self.shared = root / "shared"
        self.strategies, self.reports = self.shared / "strategies", self.shared / "reports"
        self.exports, self.steps = self.shared / "exports", self.shared / "step-results"
        self.contracts = root / "contracts"
        for folder in (self.strategies, self.reports, self.contracts):
            folder.mkdir(parents=True, exist_ok=True)
        settings = {
            "STRATLAB_SHARED_DIR": str(self.shared),
            "STRATLAB_STRATEGIES_DIR": str(self.strategies),
            "STRATLAB_REPORTS_DIR": str(self.reports),
            "STRATLAB_EXPORTS_DIR": str(self.exports),
            "STRATLAB_STEP_RESULTS_DIR": str(self.steps),
            "STRATLAB_HOME": str(root / "home"),
            "PREFECT_HOME": str(root / "home" / "prefect"),
            "STRATLAB_LEDGER": str(root / "ledger.sqlite3"),
            # the server: expire a dead holder's lease, and tell a waiting client to ask again, within 1-2 s
            "PREFECT_SERVER_SERVICES_REPOSSESSOR_LOOP_SECONDS": "1",
            "PREFECT_SERVER_CONCURRENCY_MAXIMUM_CONCURRENCY_SLOT_WAIT_SECONDS": "2",
        }
        # Every command runs from a snapshot of the code: the step cache is keyed by the source of tasks/
        # and strategy_contract/, so an edit in the working tree during the soak would look like a miss.
        self.code = root / "code"
        for name in SNAPSHOT:
            source, target = REPO / name, self.code / name
            if source.is_dir():
                shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            elif source.is_file():
                shutil.copy2(source, target)
        os.chdir(self.code)  # `python -m stratlab` imports the snapshot first, and `up` deploys it
        for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL", "PREFECT_API_URL"):
            os.environ.pop(name, None)
        sys.path[:0] = [str(self.code), str(self.code / "tests")]
        from test_operate import Stack, free_port

        os.environ.update(settings)  # after test_operate's conftest, which points some at its own scratch

        self.stack = Stack(root / "home")
        self.stack.env.update(settings)
        self.stack.strategies = self.strategies
        self.free_port = free_port

    # --- the stack and its API ------------------------------------------------------------------

    def up(self) -> None:
        done = self.stack.cli("up", "--port", str(self.free_port()), "--json", timeout=300)
        if done.returncode != 0:
            raise SystemExit(f"stratlab up failed: {done.stdout}{done.stderr[-3000:]}")
        self.stack.api = json.loads(done.stdout)["api_url"]
        self.cli_env = {**self.stack.env, "PREFECT_API_URL": self.stack.api, "COLUMNS": "200"}

    def down(self) -> None:
        self.stack.cli("down", "--json")

    def flow_runs(self) -> dict[str, object]:
        from prefect.client.schemas.sorting import FlowRunSort

        with self.stack.client() as c:
            return {
                str(r.id): r for r in c.read_flow_runs(sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=200)
            }

    def task_states(self, run_ids: list[str]) -> list[tuple[str, str | None]]:
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

        if not run_ids:
            return []
        with self.stack.client() as c:
            tasks = c.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(r) for r in run_ids])), limit=200
            )
        return [(t.name, t.state.name if t.state else None) for t in tasks]

    def crash(self, runs: dict[str, object]) -> str:
        """Mark the killed, unfinished runs Crashed (as the heartbeat automation would); say where they were."""
        from prefect.states import Crashed

        phases = []
        with self.stack.client() as c:
            for run_id, run in runs.items():
                if run.state is not None and run.state.is_final():
                    phases.append(f"after its run ended {run.state.name}")  # killed while the CLI exits
                    continue
                if run.state is None:
                    continue
                parts = (run.state.message or run.state.name).split(" | ")
                # a cycle says "<phase> | <strategy>", a campaign "iteration <n> | <state> | <reason>"
                phases.append(" ".join(parts[:2]) if parts[0].startswith("iteration ") else parts[0])
                c.set_flow_run_state(UUID(run_id), Crashed(message="soak: process killed"), force=True)
        running = sorted({n.rsplit("-", 1)[0] for n, s in self.task_states(list(runs)) if s == "Running"})
        phase = ", ".join(phases) or "before its flow run"
        return phase + (f" ({'/'.join(running)} running)" if running else "")

    def wait_final(self, run_id: str, timeout: float = 400) -> object:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.stack.client() as c:
                run = c.read_flow_run(UUID(run_id))
            if run.state and run.state.is_final():
                return run
            time.sleep(0.5)
        raise TimeoutError(f"run {run_id} did not end in {timeout} s")

    # --- the commands ---------------------------------------------------------------------------

    def contract(self, name: str) -> Path:
        data = yaml.safe_load((REPO / "strategies" / "fuzzy_momentum_mlp.yaml").read_text())
        data["strategy_id"] = name
        data["model"] = {**data["model"], "epochs": EPOCHS}
        path = self.contracts / f"{name}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    def command(self, kind: str, n: int) -> list[str]:
        if kind == "campaign":
            return ["campaign", "run", *CAMPAIGN_ARGS, "--seed", str(1000 + n)]
        verb = "cycle" if kind == "cycle" else "trigger"  # in this process, or on the stack's worker
        contract = self.contract(f"soak_{kind}_r{n:02d}")
        return [verb, "--strategy", str(contract), "--designer", "local", "--assessor", "local", "--json"]

    def spawn(self, args: list[str]) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "stratlab", *args],
            cwd=self.code,
            env=self.cli_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: the kill takes everything it started
        )

    def complete(self, kind: str, args: list[str], timeout: float = 600) -> tuple[int, str]:
        """Run a command to its end: (exit code, output). A worker run's code is read from its final state."""
        if kind != "worker":
            done = subprocess.run(
                [sys.executable, "-m", "stratlab", *args],
                cwd=self.code,
                env=self.cli_env,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
            return done.returncode, done.stdout + done.stderr
        started = self.stack.cli(*args)  # trigger ... --json
        answer = json.loads(started.stdout or "{}")
        if not answer.get("triggered"):
            return 1, f"not triggered: {answer or started.stderr[-500:]}"
        run = self.wait_final(answer["run_id"], timeout)
        message = run.state.message or ""
        code = 0 if run.state.name == "Completed" else 2 if " gate failed: " in message else 1
        return code, f"{run.state.name}: {message}"

    def worker_processes(self) -> list:
        import psutil

        pid = json.loads((self.stack.home / "stack.json").read_text())["worker_pid"]
        worker = psutil.Process(pid)
        return [worker, *worker.children(recursive=True)]

    def kill_worker(self) -> None:
        import psutil

        processes = self.worker_processes()
        groups = set()
        for p in processes:
            try:
                groups.add(os.getpgid(p.pid))
            except ProcessLookupError:
                continue
        for group in groups - {os.getpgid(0)}:
            os.killpg(group, signal.SIGKILL)
        for p in processes:  # anything that had moved to a group of its own in between
            if p.is_running():
                p.kill()
        psutil.wait_procs(processes, timeout=10)

    # --- one kill and its re-run ----------------------------------------------------------------

    def baseline(self, kind: str) -> float:
        """Seconds of an uninterrupted run of this kind (its own strategy id or seed: nothing cached)."""
        started = time.monotonic()
        code, output = self.complete(kind, self.command(kind, 0))
        if code not in (0, 2):
            raise SystemExit(f"the uninterrupted {kind} run failed ({code}):\n{output[-3000:]}")
        return time.monotonic() - started

    def run(self, n: int, kind: str, duration: float) -> Row:
        row = Row(run=n, kind=kind, after_s=round(self.rng.uniform(0.05, 0.95) * duration, 1))
        args = self.command(kind, n)
        known, steps_before = set(self.flow_runs()), set(self.step_files())
        campaigns_before = set(self.campaign_records())
        begun = time.monotonic()
        if kind == "worker":
            started = self.stack.cli(*args)
            if not json.loads(started.stdout or "{}").get("triggered"):
                row.outcome = f"not triggered: {started.stdout[-200:]}"
                return row
            time.sleep(max(0.0, row.after_s - (time.monotonic() - begun)))
            self.kill_worker()
        else:
            proc = self.spawn(args)
            time.sleep(row.after_s)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()  # reaps it: a stage's owner must be provably gone
        killed = {k: v for k, v in self.flow_runs().items() if k not in known}
        row.phase = self.crash(killed)
        row.finished_before_kill = len(set(self.step_files()) - steps_before)
        row.corrupt, row.leftovers, stages = self.scan()

        if kind == "worker":
            again = self.stack.cli("up", "--json")
            if again.returncode != 0:
                row.outcome = f"stratlab up failed: {again.stderr[-200:]}"
                return row
        elif kind == "campaign" and (started := set(self.campaign_records()) - campaigns_before):
            resumed = started.pop()
            args = ["campaign", "run", "--resume", resumed]  # it has a record: continue it
        resuming = args[:3] == ["campaign", "run", "--resume"]
        on_disk = self.iterations_on_disk(args[3]) if resuming else (set(), 0)
        known = set(self.flow_runs())
        code, output = self.complete(kind, args)
        row.completed = code in (0, 2)
        row.outcome = {0: "completed (0)", 2: "gate said no (2)"}.get(code, f"FAILED ({code})")
        if resuming:
            row.outcome += ", resumed"
            row.read_back = self.read_back(args[3], *on_disk)
        if not row.completed:
            print(f"run {n}: the re-run failed:\n{output[-3000:]}", file=sys.stderr)
        rerun = [k for k in self.flow_runs() if k not in known]
        row.cached = sum(state == "Cached" for _, state in self.task_states(rerun))
        corrupt, _, left = self.scan()
        row.corrupt += [f"{p} (after the re-run)" for p in corrupt if p not in row.corrupt]
        row.stale_stages = sorted(set(stages) & set(left))
        row.seconds = round(time.monotonic() - begun, 1)
        return row

    # --- the files ------------------------------------------------------------------------------

    def campaign_record(self, campaign_id: str) -> dict:
        return json.loads((self.reports / "campaigns" / campaign_id / "campaign.json").read_text())

    def iterations_on_disk(self, campaign_id: str) -> tuple[set[int], int]:
        """The iterations whose files a campaign had written, and how many transitions it had recorded."""
        folder = self.reports / "campaigns" / campaign_id / "iterations"
        written = {int(p.stem.removeprefix("iter_")) for p in folder.glob("iter_*.json")}
        return written, len(self.campaign_record(campaign_id)["transitions"])

    def read_back(self, campaign_id: str, written: set[int], transitions_before: int) -> int:
        """Iterations the resumed campaign took from their files: written before, not started again."""
        later = self.campaign_record(campaign_id)["transitions"][transitions_before:]
        started_again = {t["iteration"] for t in later if t["reason"] == "iteration_started"}
        return len(written - started_again)

    def campaign_records(self) -> list[str]:
        """Ids of the campaigns that have a record (campaign.json) under the reports folder."""
        return [p.parent.name for p in (self.reports / "campaigns").glob("*/campaign.json")]

    def step_files(self) -> list[str]:
        if not self.steps.is_dir():
            return []
        return [p.relative_to(self.steps).as_posix() for p in self.steps.rglob("*") if p.is_file()]

    def scan(self) -> tuple[list[str], list[str], list[str]]:
        """(corrupt files, temporary files outside a staging folder, staging folders present)."""
        corrupt, leftovers = [], []
        staging = self.strategies / ".staging"
        stages = sorted(p.name for p in staging.iterdir()) if staging.is_dir() else []
        for root in (self.strategies, self.reports, self.exports, self.steps):
            for path in sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []:
                shown = str(path.relative_to(self.shared))
                if TEMP_FILE.match(path.name):
                    if staging not in path.parents:
                        leftovers.append(shown)
                    continue
                problem = self.check(path, root)
                if problem:
                    corrupt.append(f"{shown}: {problem}")
        return corrupt, leftovers, stages

    def check(self, path: Path, root: Path) -> str | None:
        """Why this file is not whole, or None."""
        try:
            data = path.read_bytes()
            if root == self.steps:
                from tasks.step_store import verify

                json.loads(verify(path.relative_to(root).as_posix(), data))
                return None
            suffix = path.suffix.lower()
            if suffix == ".json":
                json.loads(data)
            elif suffix in (".yaml", ".yml"):
                parsed = yaml.safe_load(data)
                if isinstance(parsed, dict) and "strategy_id" in parsed:
                    from strategy_contract import load_strategy

                    load_strategy(path)
            elif suffix == ".png":
                if not (data.startswith(PNG_HEAD) and data.endswith(PNG_TAIL)):
                    return "not a whole PNG (no IEND chunk at its end)"
            elif suffix == ".ckpt":
                import torch

                torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)["state_dict"]
            elif suffix == ".parquet":
                import pandas as pd

                pd.read_parquet(io.BytesIO(data))
            elif suffix == ".npy":
                import numpy as np

                np.load(io.BytesIO(data))
            elif suffix == ".csv":
                import pandas as pd

                pd.read_csv(io.BytesIO(data))
            elif suffix in (".md", ".diff", ".txt", ".pine", ".cs"):
                data.decode("utf-8")
        except Exception as exc:  # whatever the reader says is the finding
            return f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
        return None


def plan(runs: int, rng: random.Random) -> list[str]:
    """A seeded mix: a fifth worker kills (at least one), about a third campaigns, the rest cycles."""
    workers = max(1, runs // 5)
    campaigns = max(1, runs * 7 // 20) if runs > 1 else 0
    kinds = ["worker"] * workers + ["campaign"] * campaigns
    kinds += ["cycle"] * max(0, runs - len(kinds))
    kinds = kinds[:runs]
    rng.shuffle(kinds)
    return kinds


def table(rows: list[Row]) -> str:
    lines = [
        "| run | what was killed | after (s) | phase at kill | corrupt files | leftover temp files "
        "| re-run outcome | steps reused (Cached) | seconds |",
        "|---:|---|---:|---|---:|---:|---|---|---:|",
    ]
    for r in rows:
        reuse = f"{r.cached} (finished before the kill: {r.finished_before_kill})"
        if r.finished_before_kill == 0:
            reuse += "; none finished, 0 is right" if r.cached == 0 else ""
        if r.phase.startswith("after its run ended"):
            reuse += "; the run had ended: nothing to redo"
        if r.read_back:
            reuse += f"; {r.read_back} iteration(s) read back from their files, not re-run"
        stale = f"; staging kept: {len(r.stale_stages)}" if r.stale_stages else ""
        lines.append(
            f"| {r.run} | {r.kind} | {r.after_s} | {r.phase} | {len(r.corrupt)} | {len(r.leftovers)} "
            f"| {r.outcome}{stale} | {reuse} | {r.seconds} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="kills, each followed by a re-run (default 20)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the mix and of the kill delays")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and print its path")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs: give at least 1")

    wall = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="stratlab-soak-"))
    soak = Soak(root, args.seed)
    rows: list[Row] = []
    try:
        soak.up()
        kinds = plan(args.runs, soak.rng)
        durations = {kind: soak.baseline(kind) for kind in sorted(set(kinds))}
        print(
            "uninterrupted runs (s): " + ", ".join(f"{k} {v:.1f}" for k, v in durations.items()),
            flush=True,
        )
        for n, kind in enumerate(kinds, start=1):
            row = soak.run(n, kind, durations[kind])
            rows.append(row)
            print(
                f"run {n}/{args.runs}: {kind} killed after {row.after_s} s ({row.phase}); "
                f"re-run {row.outcome}, {row.cached} cached, {row.seconds} s",
                flush=True,
            )
            for problem in row.corrupt + [f"leftover: {p}" for p in row.leftovers]:
                print(f"    {problem}", flush=True)
    finally:
        soak.down()
        import conftest  # test_operate's; it made a scratch folder on import

        shutil.rmtree(conftest._scratch, ignore_errors=True)
        if args.keep:
            print(f"kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)

    corrupt = sum(len(r.corrupt) for r in rows)
    completed = sum(r.completed for r in rows)
    reused = sum(r.cached > 0 or r.read_back > 0 for r in rows)
    missed = [
        r.run
        for r in rows
        if r.finished_before_kill
        and not r.cached
        and not r.read_back
        and not r.phase.startswith("after its run")
    ]
    stale = [r.run for r in rows if r.stale_stages]
    print()
    print(table(rows))
    print()
    print(f"- runs: {len(rows)} of {args.runs}")
    print(f"- corrupt files: {corrupt} (must be 0)")
    print(f"- leftover temporary files after a kill: {sum(len(r.leftovers) for r in rows)}")
    print(f"- re-runs completed: {completed} (must be {args.runs})")
    print(f"- runs that reused at least one step or iteration: {reused}")
    print(f"- runs where steps had finished before the kill but none was reused: {missed or 'none'}")
    print(f"- runs whose dead staging folder survived the re-run: {stale or 'none'}")
    print(f"- wall time: {time.monotonic() - wall:.0f} s")
    return 0 if corrupt == 0 and completed == args.runs and not stale else 1


if __name__ == "__main__":
    sys.exit(main())

"""Local runner for the entry script: N worker processes, each calls `score.init()` once and
`score.run(mini_batch)` per mini-batch, exactly as Azure ML's parallel job does.

Failed partitions are retried (each as its own mini-batch) up to `max_retries` times; after the
last try they are reported. The run compares the number of failed partitions with
`error_threshold` (-1 ignores failures, as in Azure ML) to decide the exit code. Because outputs
are written atomically and skipped when up to date, a killed run is finished by running it again.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter, deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import pandas as pd

from batch_scoring import dataio, score
from batch_scoring.lifetime import die_with_parent
from batch_scoring.schema import MODEL_MANIFEST, RUN_SUMMARY, Partition
from batch_scoring.storage import CONNECTION_STRING_ENV, MissingBlob, StoreSpec

log = logging.getLogger("batch_scoring.runner")
FAILURES = "_FAILURES.json"


@dataclass
class RunSummary:
    partitions: int = 0
    scored: int = 0
    skipped: int = 0
    failed: int = 0
    retries: int = 0
    rows: int = 0
    rows_scored: int = 0
    anomalies: int = 0
    seconds: float = 0.0
    error_threshold: int = 0
    ok: bool = True
    failures: dict[str, dict] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    store: str = ""
    workers: int = 0
    finished: str = ""

    @property
    def rows_per_s(self) -> float:
        return self.rows_scored / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "rows_per_s": round(self.rows_per_s, 1)}

    def text(self) -> str:
        lines = [
            f"partitions {self.partitions}: scored {self.scored}, skipped (up to date) {self.skipped}, "
            f"failed {self.failed} (retries {self.retries})",
            f"rows scored {self.rows_scored:,} in {self.seconds:.2f}s = {self.rows_per_s:,.0f} rows/s "
            f"with {self.workers} worker(s); anomalies flagged {self.anomalies:,} of {self.rows:,} rows",
        ]
        for key, f in sorted(self.failures.items()):
            lines.append(f"  FAILED {key} after {f['attempts']} attempt(s): {f['error']}")
        verdict = "OK" if self.ok else "FAILED"
        limit = "ignored (-1)" if self.error_threshold < 0 else str(self.error_threshold)
        lines.append(f"{verdict}: {self.failed} failed partition(s), error threshold {limit}")
        return "\n".join(lines)


def discover(spec: StoreSpec) -> list[Partition]:
    """Every partition with a model or with data: a model without data is a failure too."""
    store = spec.open()
    try:
        models = json.loads(store.models.read_bytes(MODEL_MANIFEST)).get("models", {})
    except MissingBlob:
        models = {}
    parts = {Partition.parse(k) for k in models} | set(dataio.list_partitions(store.data))
    return sorted(parts)


def _worker_init(argv: list[str]) -> None:
    die_with_parent()  # a killed runner takes its workers with it: none goes on writing
    logging.basicConfig(level=logging.WARNING)
    score.init(argv)


def _worker_run(mini_batch: list[str]) -> tuple[list[dict], dict[str, str]]:
    result = score.run(mini_batch)
    return result.to_dict("records"), dict(score.LAST_ERRORS)


def _argv(spec: StoreSpec, force: bool) -> list[str]:
    if spec.kind == "folders":
        data, models, preds = spec.folders
        argv = ["--data_dir", data, "--models_dir", models, "--output_dir", preds]
    elif spec.kind == "blob":
        argv = ["--store", "blob" if spec.path == "blob" else spec.path, "--prefix", spec.prefix]
    else:
        argv = ["--store", f"local:{spec.path}", "--prefix", spec.prefix]
    return [*argv, "--force"] if force else argv


def _run_pool(workers: int, argv: list[str], batches: list[list[str]], settle) -> None:
    """Feed mini-batches to a process pool, a few in flight per worker.

    If a worker process dies (segfault, OOM kill), the pool breaks and every mini-batch in flight
    fails with it, innocent or not. Their partitions become suspects: a fresh pool runs each
    suspect alone, so a crash is charged to the partition that caused it (one failed attempt,
    retried alone) and the innocent ones simply complete.
    """
    queue = deque(batches)
    suspects: deque[list[str]] = deque()
    pool: ProcessPoolExecutor | None = None
    pending: dict[Future, list[str]] = {}
    alone: set[Future] = set()
    try:
        while queue or suspects or pending:
            if pool is None:
                pool = ProcessPoolExecutor(workers, initializer=_worker_init, initargs=(argv,))
            if suspects:
                if not pending:
                    batch = suspects.popleft()
                    fut = pool.submit(_worker_run, batch)
                    pending[fut] = batch
                    alone.add(fut)
            else:
                while queue and len(pending) < 2 * workers:
                    batch = queue.popleft()
                    pending[pool.submit(_worker_run, batch)] = batch
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            broken = False
            for fut in done:
                batch = pending.pop(fut)
                try:
                    rows, errs = fut.result()
                except BrokenProcessPool:
                    broken = True
                    if fut in alone:  # it ran alone: this partition killed its worker
                        suspects.extend(settle(batch, [], dict.fromkeys(batch, "worker process died")))
                    else:
                        suspects.extend([k] for k in batch)
                    continue
                except Exception as exc:
                    rows, errs = [], dict.fromkeys(batch, f"worker failed: {exc!r}")
                queue.extend(settle(batch, rows, errs))
            if broken:
                for batch in pending.values():
                    suspects.extend([k] for k in batch)
                pending.clear()
                alone.clear()
                pool.shutdown(wait=True, cancel_futures=True)
                pool = None
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def run_local(
    spec: StoreSpec,
    workers: int = 2,
    mini_batch_size: int = 10,
    max_retries: int = 2,
    error_threshold: int = 0,
    force: bool = False,
    partitions: list[Partition] | None = None,
    progress: bool = True,
) -> RunSummary:
    """Score every partition; `workers=0` runs inline in this process (debugging, tests)."""
    from tqdm import tqdm

    started = time.perf_counter()
    if spec.kind == "blob" and spec.path == "blob":
        # Workers read the secret from the environment, never from their argv.
        os.environ[CONNECTION_STRING_ENV] = spec.connection_string
    store = spec.open()
    removed = store.preds.cleanup_partial()
    if removed:
        log.warning("removed %d partial output(s) left by an interrupted run", removed)
    store.preds.delete(RUN_SUMMARY)
    parts = partitions if partitions is not None else discover(spec)
    keys = [p.key for p in parts]
    if not keys:
        raise ValueError(f"nothing to score in {spec.describe()}: no models and no data partitions")
    if not store.models.exists(MODEL_MANIFEST):
        raise ValueError(f"no {MODEL_MANIFEST} in {store.models.describe()}: run `train` first")
    batches = [keys[i : i + mini_batch_size] for i in range(0, len(keys), max(1, mini_batch_size))]
    attempts: Counter[str] = Counter()
    results: dict[str, dict] = {}
    errors: dict[str, str] = {}
    summary = RunSummary(
        partitions=len(keys), error_threshold=error_threshold, workers=workers, store=spec.describe()
    )
    bar = tqdm(total=len(keys), desc="score", unit="partition", disable=not progress)

    def settle(batch: list[str], rows: list[dict], errs: dict[str, str]) -> list[list[str]]:
        """Record a finished mini-batch; return the retries it needs."""
        retry = []
        for key in batch:
            attempts[key] += 1
        for row in rows:
            results[row["partition"]] = row
            errors.pop(row["partition"], None)
        done_keys = {r["partition"] for r in rows}
        for key in batch:
            if key in done_keys:
                bar.update(1)
                continue
            errors[key] = errs.get(key, "no result returned")
            if attempts[key] <= max_retries:
                retry.append([key])
            else:
                bar.update(1)
        summary.retries += len(retry)
        return retry

    if workers <= 0:
        score.init(_argv(spec, force))
        queue = deque(batches)
        while queue:
            batch = queue.popleft()
            rows, errs = _worker_run(batch)
            queue += settle(batch, rows, errs)
    else:
        _run_pool(workers, _argv(spec, force), batches, settle)
    bar.close()

    frame = pd.DataFrame(list(results.values()), columns=score.RESULT_COLUMNS)
    summary.scored = int((frame["status"] == "scored").sum())
    summary.skipped = int((frame["status"] == "skipped").sum())
    summary.rows = int(frame["rows"].sum())
    summary.rows_scored = int(frame.loc[frame["status"] == "scored", "rows"].sum())
    summary.anomalies = int(frame["anomalies"].sum())
    scored = frame[frame["status"] == "scored"]
    if len(scored):
        summary.timings = {
            c: round(float(scored[c].mean()) * 1000, 3) for c in ("t_read", "t_model", "t_predict", "t_write")
        }  # ms per partition
    summary.failures = {k: {"error": errors[k], "attempts": attempts[k]} for k in sorted(errors)}
    summary.failed = len(errors)
    summary.ok = error_threshold < 0 or summary.failed <= error_threshold
    summary.seconds = time.perf_counter() - started
    summary.finished = datetime.now(UTC).isoformat(timespec="seconds")
    report = json.dumps(summary.as_dict(), indent=1).encode()
    if summary.ok:
        # The marker a downstream consumer waits for: the run finished within its error threshold
        # (the summary inside lists any failed partitions).
        store.preds.write_bytes(RUN_SUMMARY, report)
        store.preds.delete(FAILURES)
    else:
        store.preds.write_bytes(FAILURES, report)
    return summary

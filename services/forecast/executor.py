"""Where forecast fits run: a local process pool or a Dask cluster, each with a hard timeout.

Prophet fits can hang (prophet#2524), so no fit runs in the caller's process. Locally a
pebble ProcessPool kills a worker whose task outlives its timeout; on Dask the Stan process
is stopped by cmdstanpy's own `timeout` (Prophet.fit passes keyword arguments through to
`CmdStanModel.optimize`) and the client stops waiting after the timeout plus a grace period.
Either way the caller gets a `FitOutcome` with `timed_out` set, never a stuck loop.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import logging
import os
import queue
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from services.forecast.result import thin_samples

if TYPE_CHECKING:
    from services.forecast.breach import BreachRisk
    from services.forecast.model import ForecastConfig, ForecastResult

log = logging.getLogger(__name__)

# The share of the task timeout granted to Stan before cmdstanpy stops it: the pool's kill
# is the backstop, and a worker that stops its own Stan process survives for the next task.
STAN_SHARE = 0.9
# Extra client-side wait on Dask beyond the task timeout (transfer, scheduling, the result).
DASK_GRACE_S = 10.0
# Tasks in flight per worker slot: enough to keep workers busy, few enough that a timed-out
# task's clock starts close to when it was handed over.
INFLIGHT_PER_SLOT = 2
# Local fitting yields to the web app and scheduler on a shared machine; on an otherwise
# idle host a niced worker still gets a whole core.
NICE = 10


@dataclass(frozen=True)
class FitTask:
    """One series to fit: its (element_id, kpi_id) key, history and configuration."""

    key: tuple[int, int]
    history: pd.DataFrame
    config: ForecastConfig
    warm_params: dict[str, Any] | None = None
    backtest: dict[str, Any] | None = None


@dataclass(frozen=True)
class FitOutcome:
    """How one task ended: a result, or an error, or a timeout (result then None)."""

    key: tuple[int, int]
    result: ForecastResult | None
    error: str | None
    timed_out: bool
    seconds: float
    # Breach risk against config.capacity, computed beside the fit (in parallel, not in
    # the caller); None when there is no capacity, no sample paths, or it failed.
    risk: BreachRisk | None = None


FitFunc = Callable[[FitTask], "ForecastResult"]
OnDone = Callable[[FitOutcome], None]


class ForecastExecutor(Protocol):
    """Runs fit tasks somewhere and reports each outcome in the caller's thread."""

    def run(
        self, tasks: Iterable[FitTask], *, timeout_s: float, on_done: Callable[[FitOutcome], None]
    ) -> None: ...

    def close(self) -> None: ...


def fit_series(task: FitTask) -> ForecastResult:
    """The production fit: Beacon's forecasting model on one series."""
    from services.forecast.model import forecast_series

    return forecast_series(
        task.history, task.config, warm_params=task.warm_params, backtest=task.backtest
    )


def make_executor(spec: str, *, workers: int, fit: FitFunc | None = None) -> ForecastExecutor:
    """`local` (a process pool of `workers`) or `dask://host:port`; `fit` replaces the model."""
    fit = fit or fit_series
    if spec == "local":
        return LocalExecutor(workers=workers, fit=fit)
    if spec.startswith("dask://") and len(spec) > len("dask://"):
        return DaskExecutor(address="tcp://" + spec.removeprefix("dask://"), fit=fit)
    raise ValueError(f"forecast executor must be local or dask://host:port, not {spec!r}")


# ---- inside the worker process ------------------------------------------------------------

_state = threading.local()  # per thread: Dask runs several tasks per worker process


def prepare_worker(*, nice: int = 0) -> None:
    """Import Prophet once and silence its per-fit logging; install the Stan deadline."""
    import prophet  # noqa: F401  (import cost paid once per worker, not per fit)

    # cmdstanpy logs two INFO lines per fit; at thousands of fits that is the whole log.
    logging.getLogger("cmdstanpy").disabled = True
    logging.getLogger("prophet").setLevel(logging.WARNING)
    _install_stan_deadline()
    if nice:
        with contextlib.suppress(OSError):  # not permitted here: normal priority then
            os.nice(nice)


def _init_local_worker(ready: Any, nice: int) -> None:
    prepare_worker(nice=nice)
    ready.put(os.getpid())
    # pebble stops a timed-out worker with SIGTERM; take the Stan child process along,
    # or a hung Stan would outlive its worker.
    signal.signal(signal.SIGTERM, _exit_with_children)


def _exit_with_children(signum: int, frame: Any) -> None:
    with contextlib.suppress(Exception):  # best effort: exiting matters more
        import psutil

        for child in psutil.Process().children(recursive=True):
            child.kill()
    os._exit(1)


def _install_stan_deadline() -> None:
    """Give every Stan optimisation in this process the time left of the current task."""
    from prophet.models import CmdStanPyBackend

    original = CmdStanPyBackend.fit
    if getattr(original, "beacon_deadline", False):
        return

    @functools.wraps(original)
    def fit(self: Any, stan_init: Any, stan_data: Any, **kwargs: Any) -> Any:
        deadline = getattr(_state, "deadline", None)
        if deadline is not None and "timeout" not in kwargs:
            left = deadline - time.monotonic()
            if left <= 0:
                _state.timed_out = True
                raise TimeoutError("the fit's time budget is used up")
            kwargs["timeout"] = left  # cmdstanpy terminates Stan and raises TimeoutError
        try:
            return original(self, stan_init, stan_data, **kwargs)
        except TimeoutError:
            _state.timed_out = True
            raise

    fit.beacon_deadline = True  # type: ignore[attr-defined]
    CmdStanPyBackend.fit = fit  # type: ignore[method-assign]


def execute(task: FitTask, stan_budget_s: float, fit: FitFunc) -> FitOutcome:
    """Run one task in a worker; errors come back as text, never as an exception."""
    prepare_worker()  # no-op after the first call in a process
    started = time.monotonic()
    _state.deadline, _state.timed_out = started + stan_budget_s, False
    try:
        result = fit(task)
        error = None
    except Exception as exc:  # noqa: BLE001 - any failure is reported back as text
        result = None
        error = _describe(exc)
    finally:
        _state.deadline = None
    timed_out = bool(getattr(_state, "timed_out", False))
    if timed_out:
        # The model may have caught the timeout and returned its own fallback; the caller
        # labels a timeout the same way wherever it was caught.
        result = None
        error = error or f"Stan optimisation stopped after {stan_budget_s:.0f} s"
    risk = _risk(task, result) if result is not None else None
    if result is not None and getattr(result, "samples", None) is not None:
        # Risk is computed from all paths; only the stored ones travel back to the parent,
        # which then unpickles a tenth of the data (the parent is the pool's bottleneck).
        result.samples = thin_samples(result.samples)
    return FitOutcome(task.key, result, error, timed_out, time.monotonic() - started, risk)


def _risk(task: FitTask, result: Any) -> BreachRisk | None:
    """Breach risk of a fitted result against the task's capacity threshold."""
    config = task.config
    samples, frame = getattr(result, "samples", None), getattr(result, "frame", None)
    if config.capacity is None or samples is None or frame is None or frame.empty:
        return None
    from services.forecast.breach import breach_risk

    try:
        return breach_risk(
            samples,
            pd.DatetimeIndex(frame["ds"]),
            threshold=float(config.capacity),
            higher_is_worse=config.higher_is_worse,
        )
    except Exception:  # noqa: BLE001 - the caller computes it again and logs why
        return None


def _describe(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"[:2000]


# ---- local process pool -------------------------------------------------------------------


class LocalExecutor:
    """A pebble ProcessPool on this machine; a task over its timeout has its worker killed."""

    def __init__(self, *, workers: int, fit: FitFunc = fit_series, nice: int = NICE) -> None:
        self.workers = max(1, int(workers))
        self.fit = fit
        self.nice = nice
        self._pool: Any = None
        self._ready: Any = None
        self._started = 0

    def _ensure_pool(self) -> Any:
        if self._pool is None:
            import multiprocessing

            from pebble import ProcessPool

            # forkserver: workers never fork the caller, whose scheduler and web threads may
            # hold locks; the server preloads Prophet so a replaced worker starts quickly.
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["services.forecast.executor", "prophet"])
            self._ready, self._started = context.SimpleQueue(), 0
            self._pool = ProcessPool(
                max_workers=self.workers,
                initializer=_init_local_worker,
                initargs=(self._ready, self.nice),
                context=context,
            )
        return self._pool

    def run(self, tasks: Iterable[FitTask], *, timeout_s: float, on_done: OnDone) -> None:
        """Fit every task (at most workers x 2 in flight); on_done runs in this thread."""
        pool = self._ensure_pool()
        pending = iter(tasks)
        inflight: dict[concurrent.futures.Future, tuple[FitTask, float]] = {}

        def submit() -> bool:
            task = next(pending, None)
            if task is None:
                return False
            future = pool.schedule(
                execute, args=(task, timeout_s * STAN_SHARE, self.fit), timeout=timeout_s
            )
            inflight[future] = (task, time.monotonic())
            return True

        try:
            while len(inflight) < self.workers * INFLIGHT_PER_SLOT and submit():
                pass
            while inflight:
                done, _ = concurrent.futures.wait(
                    list(inflight), return_when=concurrent.futures.FIRST_COMPLETED
                )
                for future in done:
                    task, submitted = inflight.pop(future)
                    on_done(_local_outcome(future, task, submitted, timeout_s))
                    submit()
        finally:
            for future in inflight:
                future.cancel()

    def close(self) -> None:
        """Let idle workers exit; stop them at once if a task is still running."""
        if self._pool is not None:
            self._await_started()
            self._pool.close()
            try:
                self._pool.join(timeout=10)
            except TimeoutError:
                self._pool.stop()
                self._pool.join(timeout=10)
            self._pool = None

    def _await_started(self, limit_s: float = 10.0) -> None:
        """Wait until the workers finished starting (briefly: they start in a second or two).

        A worker still starting reads the pool's semaphores by name; stopping the pool
        under it removes them and the worker dies printing a traceback.
        """
        waited_until = time.monotonic() + limit_s
        while self._started < self.workers and time.monotonic() < waited_until:
            while not self._ready.empty():
                self._ready.get()
                self._started += 1
            if self._started < self.workers:
                time.sleep(0.02)


def _local_outcome(
    future: concurrent.futures.Future, task: FitTask, submitted: float, timeout_s: float
) -> FitOutcome:
    from pebble import ProcessExpired

    seconds = time.monotonic() - submitted
    try:
        return future.result()
    except TimeoutError:
        message = f"fit killed after the {timeout_s:g} s timeout"
        return FitOutcome(task.key, None, message, True, seconds)
    except ProcessExpired as exc:
        message = f"worker process died (exit code {exc.exitcode})"
        return FitOutcome(task.key, None, message, False, seconds)
    except concurrent.futures.CancelledError:
        return FitOutcome(task.key, None, "cancelled", False, seconds)
    except Exception as exc:  # noqa: BLE001 - e.g. the task could not be pickled
        return FitOutcome(task.key, None, _describe(exc), False, seconds)


# ---- Dask distributed ---------------------------------------------------------------------


class DaskExecutor:
    """Tasks on a Dask cluster: Stan stopped by cmdstanpy, the client waits a bounded time."""

    def __init__(
        self, *, address: str, fit: FitFunc = fit_series, grace_s: float = DASK_GRACE_S
    ) -> None:
        self.address = address
        self.fit = fit
        self.grace_s = grace_s
        self._client: Any = None

    def _ensure_client(self) -> Any:
        if self._client is None:
            from distributed import Client

            self._client = Client(self.address, timeout=30, set_as_default=False)
        return self._client

    def run(self, tasks: Iterable[FitTask], *, timeout_s: float, on_done: OnDone) -> None:
        """Fit every task on the cluster; on_done runs in this thread, in completion order."""
        client = self._ensure_client()
        # One task per worker thread: a task starts when submitted, so the client-side clock
        # measures its run time, not time spent queued behind others.
        slots = max(1, sum(client.nthreads().values()))
        pending: Iterator[FitTask] = iter(tasks)
        finished: queue.Queue[Any] = queue.Queue()
        inflight: dict[str, tuple[Any, FitTask, float]] = {}
        wait_s = timeout_s + self.grace_s

        def submit() -> bool:
            task = next(pending, None)
            if task is None:
                return False
            future = client.submit(execute, task, timeout_s, self.fit, pure=False)
            inflight[future.key] = (future, task, time.monotonic())
            future.add_done_callback(finished.put)
            return True

        try:
            while len(inflight) < slots and submit():
                pass
            while inflight:
                oldest = min(started for _, _, started in inflight.values())
                try:
                    future = finished.get(timeout=max(0.0, oldest + wait_s - time.monotonic()))
                except queue.Empty:
                    future = None
                if future is not None and future.key in inflight:
                    _, task, started = inflight.pop(future.key)
                    on_done(_dask_outcome(future, task, started))
                    submit()
                now = time.monotonic()
                for key, (stuck, task, started) in list(inflight.items()):
                    if now - started >= wait_s:
                        del inflight[key]
                        workers = _cancel_stuck(client, stuck)
                        message = f"no result within the {timeout_s:g} s timeout" + (
                            "; its worker was restarted" if workers else ""
                        )
                        on_done(FitOutcome(task.key, None, message, True, now - started))
                        _restart(client, workers)
                        submit()
        finally:
            for future, _, _ in inflight.values():
                future.cancel()

    def close(self) -> None:
        """Disconnect from the cluster (the cluster keeps running)."""
        if self._client is not None:
            self._client.close()
            self._client = None


def _cancel_stuck(client: Any, future: Any) -> list[str]:
    """Cancel a task past its deadline; returns the worker(s) that were running it."""
    try:
        workers = [w for w, keys in client.processing().items() if future.key in keys]
    except Exception:  # noqa: BLE001 - scheduler unreachable: nothing to restart
        workers = []
    future.cancel()
    return workers


def _restart(client: Any, workers: list[str]) -> None:
    """Restart workers through their nannies: the only way to stop a thread stuck in Python.

    Stan's own timeout normally ends a fit in time; a task still running after the grace
    period is stuck elsewhere. Other tasks on those workers are rescheduled by Dask.
    """
    if not workers:
        return
    try:
        client.restart_workers(workers, timeout=60, raise_for_error=False)
    except Exception:  # no nanny (`dask worker --no-nanny`): the thread stays busy
        log.warning("could not restart Dask worker(s) %s", workers, exc_info=True)


def _dask_outcome(future: Any, task: FitTask, started: float) -> FitOutcome:
    seconds = time.monotonic() - started
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - lost worker, unpicklable task, cancelled
        return FitOutcome(task.key, None, _describe(exc), False, seconds)

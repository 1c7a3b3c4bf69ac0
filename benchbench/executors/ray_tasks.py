"""``ray``: each cell a Ray task, on an existing cluster (``address``) or on a local one
started for the run (and stopped after).

A timing cell asks for one GPU (``num_gpus``, 1 by default on a cuda suite): Ray then gives
each concurrent task its own GPU and sets its CUDA_VISIBLE_DEVICES, which the record keeps
(``executor.cuda_visible_devices``, ``executor.ray.gpu_ids``). Each task gets a fresh worker
process (``max_calls=1``, as the process executor: no allocator or compile cache carried over
from the cell before) unless ``reuse_workers``. A cell of a cpu suite times the
CPUs themselves, so by default it asks for every CPU of the smallest node (``num_cpus``): no
two run side by side. The driver appends the records
as tasks finish (``ray.wait``). A task whose worker process dies is run again ``max_retries``
times (Ray's own retry), then its cell is ``failed`` with Ray's reason. Ctrl-C or SIGTERM
cancels the tasks still running."""
from __future__ import annotations

import contextlib
import os
import sys

from .. import records
from ..errors import ExecutorError
from .base import Executor, Where

WAIT_S = 1.0


def run_in_task(payload: dict) -> dict:
    """What each Ray task runs, in a Ray worker process."""
    import ray

    from .stages import run_payload

    record = run_payload(payload, "ray")
    ctx = ray.get_runtime_context()
    record["executor"]["ray"] = {
        "node_id": ctx.get_node_id(), "task_id": ctx.get_task_id(),
        "gpu_ids": [str(g) for g in ray.get_gpu_ids()]}
    return record


class RayExecutor(Executor):
    name = "ray"

    def __init__(self, ctx, options=None):
        super().__init__(ctx, options)
        import ray

        self.ray = ray
        self.started_here = False         # ray.shutdown() at close: a local cluster stops, a
                                          # connection to an existing one is closed
        if not ray.is_initialized():
            address = self.options.get("address")
            try:
                with contextlib.redirect_stdout(sys.stderr):     # see run()
                    self._init(address)
            except Exception as exc:  # noqa: BLE001 - Ray raises ConnectionError and others
                where = f"the Ray cluster at {address}" if address else "a local Ray cluster"
                hint = (" (a cluster with token authentication, Ray's default, also needs "
                        "RAY_AUTH_MODE=token and its token in ~/.ray/auth_token or "
                        "RAY_AUTH_TOKEN)" if address and "RAY_AUTH_MODE" not in os.environ
                        else "")
                raise ExecutorError(f"could not start or reach {where}: "
                                    f"{records.one_line(exc)}{hint}") from None
            self.started_here = True      # this driver's connection (or local cluster)

    def _init(self, address: str | None) -> None:
        if address:
            self.ray.init(address=address, log_to_driver=False)
        else:   # "local": a cluster of its own, not one `ray start` left on this machine
            self.ray.init(address="local", num_cpus=self.options.get("local_num_cpus"),
                          num_gpus=self.options.get("local_num_gpus"),
                          include_dashboard=False, log_to_driver=False)

    def run(self, cells: list, on_record, on_start=None) -> None:
        # Ray prints a dead worker's story to sys.stdout, which holds --json's output
        with contextlib.redirect_stdout(sys.stderr):
            self._run(cells, on_record, on_start)

    def _run(self, cells: list, on_record, on_start) -> None:
        ray = self.ray
        cuda = self.ctx.device.startswith("cuda")
        gpus = self.options.get("num_gpus")
        if gpus is None:
            gpus = 1 if cuda else 0
        cpus = self.options.get("num_cpus")
        if cpus is None:      # a CPU cell times the CPUs: a node's worth, one cell at a time
            cpus = 1 if cuda else _smallest_node_cpus(ray)
        task = ray.remote(num_cpus=cpus, num_gpus=gpus,
                          max_calls=0 if self.options.get("reuse_workers") else 1,
                          max_retries=self.options.get("max_retries", 1),
                          retry_exceptions=False)(run_in_task)
        running = {task.remote(self.ctx.payload(cell)): cell for cell in cells}
        for cell in cells:
            if on_start is not None:
                on_start(cell)
        try:
            while running:
                done, _ = ray.wait(list(running), num_returns=1, timeout=WAIT_S)
                for ref in done:
                    on_record(self._record(running.pop(ref), ref))
        except BaseException:          # Ctrl-C, SIGTERM, a record that cannot be written
            for ref in running:
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001 - already finished or its node is gone
                    pass
            raise

    def _record(self, cell, ref) -> dict:
        try:
            return self.ray.get(ref)
        except Exception as exc:  # noqa: BLE001 - a lost worker (after its retries), a node gone
            retries = self.options.get("max_retries", 1)
            return records.failed(cell, self.ctx.suite, self.ctx.run_id,
                                  f"Ray task failed after {retries} retr"
                                  f"{'y' if retries == 1 else 'ies'}: {_ray_reason(exc)}",
                                  executor=Where(self.name, cell.device).as_dict(
                                      host=None, pid=None))

    def close(self) -> None:
        if self.started_here:
            with contextlib.redirect_stdout(sys.stderr):
                self.ray.shutdown()


def _smallest_node_cpus(ray) -> float:
    cpus = [n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive")]
    return min((c for c in cpus if c), default=1)


def _ray_reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:400]}"

"""Measuring a ``torchrun`` job: every rank runs the workload, each node's local rank 0 meters
that node, and global rank 0 writes one label for the whole job.

``carbonlabel bench`` started by ``torchrun`` (``WORLD_SIZE`` > 1) runs as one rank of a job:

1. Process group: gloo when the workload runs on the CPU, NCCL for CUDA tensors on GPUs, and a
   gloo group of its own for the protocol's barriers, votes and set-up checks.
   ``CARBONLABEL_DIST_TIMEOUT_S`` (default 1800 s) bounds every collective and every wait, so a
   lost rank fails the job instead of hanging it.
2. Set-up: each node's local rank 0 finds that node's meters first (before the other local ranks
   touch the GPUs, which the foreign-process check would count as another workload); then every
   rank builds the workload on its own device (``cuda:LOCAL_RANK``). A failure on any rank stops
   every rank, naming it. Training a ``torch.nn.Module``: the model is wrapped in
   DistributedDataParallel, so one optimizer step of the job is every rank's step, gradients
   averaged.
3. The protocol runs on every rank in lockstep (:class:`bench_runner.measure.Lockstep`): a
   barrier before every window edge, and warm-up and trial loops end on every rank at the same
   step (a vote after each step). Ranks other than a node's local rank 0 meter nothing.
4. Exchange: every rank puts its report (:func:`bench_runner.nodes.rank_report`) in the job's
   c10d store; rank 0 waits for them (bounded), merges them into one run
   (:func:`bench_runner.nodes.merge_reports`; missing traces fail the run, naming the node) and
   puts its verdict; the other ranks wait for it and exit 0 when the run is good, 1 when not.
   Only rank 0 signs, writes and submits the label.

Test only: ``CARBONLABEL_TEST_FAKE_POWER_W`` replaces a node's meters by a constant-power fake
(see :mod:`bench_runner.node_meters`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from bench_runner.cli import CliError
from bench_runner.devices.base import Meter, MeterError
from bench_runner.measure import Lockstep, RunResult
from bench_runner.node_meters import GuardedMeter, test_meter_set
from bench_runner.nodes import JobRun, MissingTraces, merge_reports, node_name, rank_report
from bench_runner.workloads.base import Workload, WorkloadError

if TYPE_CHECKING:
    from bench_runner.devices.discover import MeterSet

TIMEOUT_ENV = "CARBONLABEL_DIST_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 1800.0
#: how long rank 0 waits for the other ranks to read its verdict before it goes on
ACK_WAIT_S = 30.0
_POLL_S = 0.05
_VERDICT = "verdict"


class DistributedError(CliError):
    """A distributed run cannot go on; the message names the rank or node."""


@dataclass(frozen=True)
class RankInfo:
    """This process's place in the job, from torchrun's environment."""

    rank: int
    world_size: int
    local_rank: int
    node_rank: int

    @property
    def metering(self) -> bool:
        """Whether this rank meters its node (its local rank 0)."""
        return self.local_rank == 0


def _env_int(environ: Mapping[str, str], name: str) -> int | None:
    raw = environ.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise DistributedError(f"{name}={raw!r} is not an integer") from None
    if value < 0:
        raise DistributedError(f"{name}={raw!r} is negative")
    return value


def rank_from_env(env: Mapping[str, str] | None = None) -> RankInfo | None:
    """This rank under torchrun, or None for a single process (``WORLD_SIZE`` unset or 1)."""
    environ = os.environ if env is None else env
    world = _env_int(environ, "WORLD_SIZE")
    if world is None or world <= 1:
        return None
    rank, local = _env_int(environ, "RANK"), _env_int(environ, "LOCAL_RANK")
    if rank is None or local is None:
        raise DistributedError(
            f"WORLD_SIZE is {world} but RANK or LOCAL_RANK is not set: launch with torchrun"
        )
    node = _env_int(environ, "GROUP_RANK")
    if node is None:
        per_node = _env_int(environ, "LOCAL_WORLD_SIZE")
        if not per_node:
            raise DistributedError(
                "GROUP_RANK (the node's rank) is not set: launch with torchrun, or set "
                "GROUP_RANK or LOCAL_WORLD_SIZE"
            )
        node = rank // per_node
    if rank >= world:
        raise DistributedError(f"RANK {rank} is not below WORLD_SIZE {world}")
    return RankInfo(rank=rank, world_size=world, local_rank=local, node_rank=node)


def timeout_from_env(env: Mapping[str, str] | None = None) -> float:
    """Seconds any collective or wait of the job may take (``CARBONLABEL_DIST_TIMEOUT_S``)."""
    raw = (os.environ if env is None else env).get(TIMEOUT_ENV)
    if not raw:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        raise DistributedError(f"{TIMEOUT_ENV}={raw!r} is not a number of seconds") from None
    if not (value > 0 and math.isfinite(value)):
        raise DistributedError(f"{TIMEOUT_ENV} must be > 0 seconds, got {raw!r}")
    return value


def job_from_env(env: Mapping[str, str] | None = None) -> Job | None:
    """The job this process is a rank of, or None when it runs alone."""
    info = rank_from_env(env)
    return None if info is None else Job(info, timeout_from_env(env))


class Job(Lockstep):
    """One rank of a distributed run (see the module docstring for the sequence)."""

    def __init__(self, info: RankInfo, timeout_s: float) -> None:
        self.info = info
        self.timeout_s = timeout_s
        self._dist: Any = None
        self._group: Any = None
        self._store: Any = None
        #: rank -> (node rank, local rank, host)
        self.topology: dict[int, tuple[int, int, str]] = {}
        self._meter_errors: list[str] = []

    @property
    def is_rank0(self) -> bool:
        return self.info.rank == 0

    def _where(self, rank: int) -> str:
        node, _local, host = self.topology.get(rank, (-1, -1, "?"))
        return f"rank {rank} ({node_name(node)}, host {host})"

    def device(self, requested: str | None) -> str:
        """This rank's torch device: ``cuda:LOCAL_RANK`` when GPUs are visible (or ``cuda`` is
        asked for), else the CPU; an explicit ``cuda:N`` or ``cpu`` is kept."""
        import torch

        if requested == "cuda" or (
            requested is None
            and torch.cuda.is_available()
            and os.environ.get("CUDA_VISIBLE_DEVICES") != ""
        ):
            return f"cuda:{self.info.local_rank}"
        return requested or "cpu"

    def setup(
        self,
        make_workload: Callable[[str], Workload],
        make_meters: Callable[[bool], MeterSet],
        requested_device: str | None,
    ) -> tuple[Workload, MeterSet]:
        """Join the job, find this node's meters (metering rank) and build the workload."""
        from bench_runner.devices.discover import MeterSet

        device = self.device(requested_device)
        self._join(device)
        found = MeterSet(meters=[])
        error: str | None = None
        if self.info.metering:
            try:
                found = self._meters(make_meters, device.startswith("cuda"))
            except (MeterError, CliError, ValueError) as exc:
                error = str(exc)
        try:
            self._all_ready("finding the meters", error)
            workload: Workload | None = None
            try:
                if device.startswith("cuda"):
                    import torch

                    torch.cuda.set_device(device)
                workload = make_workload(device)
            except (WorkloadError, CliError) as exc:
                error = str(exc)
            self._all_ready("building the workload", error)
            assert workload is not None
            self._data_parallel(workload, device)
        except BaseException:
            found.close()
            raise
        return workload, found

    def _join(self, device: str) -> None:
        import torch.distributed as dist

        if not dist.is_available():
            raise DistributedError("this PyTorch build has no torch.distributed")
        # GPUs: NCCL for CUDA tensors (DDP), gloo for CPU tensors of the workload's own code
        backend = "cpu:gloo,cuda:nccl" if device.startswith("cuda") else "gloo"
        timeout = timedelta(seconds=self.timeout_s)
        info = self.info
        try:
            store, _rank, _world = next(dist.rendezvous("env://", timeout=timeout))
            dist.init_process_group(
                backend, store=store, rank=info.rank, world_size=info.world_size, timeout=timeout
            )
            # the protocol's barriers and votes: a gloo group of their own on every rank
            self._group = dist.new_group(backend="gloo", timeout=timeout)
        except (RuntimeError, ValueError) as exc:
            raise DistributedError(
                f"rank {info.rank} cannot join the job ({backend}, timeout {self.timeout_s:g} s): "
                f"{_first_line(exc)}"
            ) from None
        self._dist = dist
        restart = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
        self._store = dist.PrefixStore(f"carbonlabel/{restart}/", store)
        me = (info.rank, info.node_rank, info.local_rank, socket.gethostname())
        everyone: list[Any] = [None] * info.world_size
        self._collective("joining", lambda: dist.all_gather_object(everyone, me, group=self._group))
        self.topology = {int(r): (int(n), int(lr), str(h)) for r, n, lr, h in everyone}
        nodes: dict[int, list[int]] = {}
        for rank, (node, local, _host) in self.topology.items():
            if local == 0:
                nodes.setdefault(node, []).append(rank)
        every_node = {node for node, _l, _h in self.topology.values()}
        doubled = {n: r for n, r in nodes.items() if len(r) > 1}
        if doubled or set(nodes) != every_node or self.topology[0][1] != 0:
            raise DistributedError(
                "every node needs exactly one local rank 0 and rank 0 must be one "
                f"(rank -> node, local rank: {sorted(self.topology.items())})"
            )

    def _collective(
        self,
        what: str,
        run: Callable[[], Any],
        errors: tuple[type[BaseException], ...] = (RuntimeError,),
    ) -> Any:
        """``run()``; a failure of the collective (``errors``: by default any RuntimeError, which
        covers torch.distributed's and gloo's) says this rank lost the others."""
        try:
            return run()
        except errors as exc:
            raise DistributedError(
                f"rank {self.info.rank} lost the other ranks ({what}): another rank failed or "
                f"did not answer within {self.timeout_s:g} s ({_first_line(exc)})"
            ) from None

    def _all_ready(self, stage: str, error: str | None) -> None:
        errors: list[Any] = [None] * self.info.world_size
        self._collective(
            stage, lambda: self._dist.all_gather_object(errors, error, group=self._group)
        )
        failed = [f"{self._where(rank)}: {e}" for rank, e in enumerate(errors) if e]
        if failed:
            raise DistributedError(f"{stage} failed on " + "; ".join(failed))

    def _meters(self, make_meters: Callable[[bool], MeterSet], gpu: bool) -> MeterSet:
        found = test_meter_set() or make_meters(gpu)
        guarded: list[Meter] = [GuardedMeter(m, self._meter_errors) for m in found.meters]
        return dataclasses.replace(found, meters=guarded)

    def _data_parallel(self, workload: Workload, device: str) -> None:
        """Training a torch module: wrap it in DistributedDataParallel (unless the plugin did)."""
        import torch
        from torch.nn.parallel import DistributedDataParallel

        model = getattr(workload, "model", None)
        if (
            workload.phase != "training"
            or not isinstance(model, torch.nn.Module)
            or isinstance(model, DistributedDataParallel)
            or not hasattr(workload, "optimizer")
        ):
            return
        ids = [torch.device(device).index] if device.startswith("cuda") else None
        wrapped = self._collective(
            "wrapping the model", lambda: DistributedDataParallel(model, device_ids=ids)
        )
        setattr(workload, "model", wrapped)  # noqa: B010  (Workload does not declare a model)
        step = workload.step

        def step_in_job() -> None:  # only DDP's own failures: a CUDA error stays what it is
            self._collective("a training step", step, (self._dist.DistError,))

        setattr(workload, "step", step_in_job)  # noqa: B010

    def edge(self) -> None:
        self._collective("at a window edge", lambda: self._dist.barrier(group=self._group))

    def agree(self, done: bool) -> bool:
        import torch

        vote = torch.tensor([1 if done else 0], dtype=torch.int32)
        op = self._dist.ReduceOp.MIN
        self._collective(
            "ending a loop", lambda: self._dist.all_reduce(vote, op=op, group=self._group)
        )
        return bool(vote.item())

    def gather(self, result: RunResult, found: MeterSet, phase: str) -> JobRun | None:
        """After the protocol: rank 0 gets the job's run (it writes the label); other ranks
        get None once rank 0 has found the run good. Raises DistributedError when traces are
        missing (on every rank) or a rank or rank 0 cannot be heard within the timeout."""
        info = self.info
        report = rank_report(
            rank=info.rank,
            node_rank=info.node_rank,
            local_rank=info.local_rank,
            result=result,
            meters=found.meters if info.metering else (),
            accelerator=found.accelerator if info.metering else None,
            flags=found.flags if info.metering else (),
            error="; ".join(self._meter_errors) or None,
        )
        try:
            if not self.is_rank0:
                self._put(f"report/{info.rank}", json.dumps(report))
                if not self._wait([_VERDICT], self.timeout_s):
                    raise DistributedError(
                        f"rank 0 gave no verdict on the run within {self.timeout_s:g} s "
                        "(it failed or is gone)"
                    )
                message = self._get(_VERDICT)
                self._put(f"ack/{info.rank}", "1")
                if message:
                    raise DistributedError(f"the run failed on rank 0: {message}")
                return None
            reports: dict[int, dict[str, Any] | None] = {0: report}
            others = [r for r in sorted(self.topology) if r != 0]
            self._wait([f"report/{r}" for r in others], self.timeout_s)
            for rank in others:
                key = f"report/{rank}"
                reports[rank] = json.loads(self._get(key)) if self._has(key) else None
            try:
                run = merge_reports(result, reports, self.topology, phase, waited_s=self.timeout_s)
            except MissingTraces as exc:
                self._verdict(str(exc), [r for r in others if reports[r] is not None])
                raise DistributedError(str(exc)) from None
            self._verdict("", others)
            return run
        finally:
            self.close()

    def _verdict(self, message: str, listening: list[int]) -> None:
        """Tell the other ranks, and wait (bounded) until they have read it."""
        self._put(_VERDICT, message)
        self._wait([f"ack/{r}" for r in listening], min(self.timeout_s, ACK_WAIT_S))

    def _store_op(self, run: Callable[[], Any]) -> Any:
        try:
            return run()
        except RuntimeError as exc:
            raise DistributedError(
                f"rank {self.info.rank} lost the job's store: {_first_line(exc)}"
            ) from None

    def _put(self, key: str, value: str) -> None:
        self._store_op(lambda: self._store.set(key, value))

    def _get(self, key: str) -> str:
        return bytes(self._store_op(lambda: self._store.get(key))).decode()

    def _has(self, key: str) -> bool:
        return bool(self._store_op(lambda: self._store.check([key])))

    def _wait(self, keys: list[str], timeout_s: float) -> bool:
        """Whether every key is in the store before ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        pending = list(keys)
        while True:
            pending = [k for k in pending if not self._has(k)]
            if not pending:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_S)

    def close(self) -> None:
        """Leave the process group (the store stays for as long as its host runs)."""
        if self._dist is not None and self._dist.is_initialized():
            with contextlib.suppress(RuntimeError):
                self._dist.destroy_process_group()
        self._dist = None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

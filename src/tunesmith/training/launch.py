"""`launch(config)`: train on `train.distributed.nproc` processes of this machine (one of
`nnodes` machines) through torch.distributed's elastic launcher, the engine behind torchrun.

Each process runs tunesmith's train(); the launcher sets RANK, WORLD_SIZE and the rendezvous
that the Trainer (accelerate) joins. With max_restarts K, a process that dies takes the group
down and the launcher starts it again, up to K times: the new processes resume from the run's
last checkpoint. The static rendezvous (torchrun's default) is used: node 0 hosts it at rdzv.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

from tunesmith.errors import TunesmithError
from tunesmith.training.distributed import check, is_main

FrontEnd = Callable[[], tuple[list, object]]  # in rank 0: (TrainerCallbacks, event subscribers)


class DistributedRunError(TunesmithError):
    """A process of a distributed run failed (after its restarts)."""


def launch(config, *, resume: bool = False, front_end: FrontEnd | None = None):
    """Train as `config` says on several processes; returns rank 0's RunResult on node 0 (None on
    the other nodes). `front_end`, a picklable function, gives rank 0 its callbacks and event
    subscribers (a progress bar and a printer, a job recorder); the other ranks get none."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    check(config)
    d = config.train.distributed
    endpoint = d.rdzv or f"127.0.0.1:{free_port()}"
    launch_config = LaunchConfig(
        min_nodes=d.nnodes, max_nodes=d.nnodes, nproc_per_node=d.nproc, run_id="tunesmith",
        rdzv_backend="static", rdzv_endpoint=endpoint, rdzv_configs={"rank": d.node_rank, "timeout": 900},
        max_restarts=d.max_restarts, monitor_interval=0.2, start_method="spawn",
    )
    try:
        results = elastic_launch(launch_config, rank_main)(config.model_dump(mode="json"), resume, front_end,
                                                           os.getpid())
    except ChildFailedError as err:
        raise DistributedRunError(_failure(err, d.max_restarts)) from err
    except SignalException as err:  # Ctrl-C or SIGTERM to the launcher: the processes got it too and
        raise KeyboardInterrupt(str(err)) from None  # stopped with a checkpoint; resume with --resume
    return results.get(0)


def rank_main(config_data: dict, resume: bool, front_end: FrontEnd | None, launcher: int):
    """One process of the group: train, resuming when the launcher restarted the group. It dies
    with its launcher (pid `launcher`): a launcher killed with -9 (a job's worker killed, a job taken
    from it) would otherwise leave its processes training, or waiting forever for each other."""
    from torch.distributed.elastic.multiprocessing.errors import record

    from tunesmith.config.schema import RunConfig
    from tunesmith.training.runner import train
    from tunesmith.utils.lifeline import die_with_parent

    die_with_parent(launcher)
    join_group()
    config = RunConfig.model_validate(config_data)
    restarted = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0
    callbacks, events = front_end() if front_end and is_main() else ([], None)
    return record(train)(config, resume=resume or restarted, callbacks=callbacks, events=events)


def join_group() -> None:
    """Join the process group over the launcher's store, under a prefix of this restart. torch's
    static rendezvous keeps one store across the group's restarts, so the ranks of a restarted
    group could read the addresses their killed predecessors wrote there and fail to connect
    ("Connection refused"); a fresh prefix per restart avoids it. The Trainer (accelerate) then
    uses this group instead of making its own."""
    from datetime import timedelta

    import torch
    import torch.distributed as dist

    from tunesmith.training.distributed import rank, world_size

    if world_size() < 2 or dist.is_initialized():
        return
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world_size(),
                          is_master=False, timeout=timedelta(seconds=900))
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo", rank=rank(),
                            world_size=world_size(), store=dist.PrefixStore(f"tunesmith/attempt-{attempt}", store))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _failure(err, restarts: int) -> str:
    rank, failure = err.get_first_failure()
    cause = failure.message
    if isinstance(cause, dict):
        cause = cause.get("message", cause)
    cause = str(cause).strip().splitlines()[-1] if str(cause).strip() else f"exit code {failure.exitcode}"
    after = f" after {restarts} restart{'s' * (restarts != 1)}" if restarts else ""
    return f"distributed training failed{after}: rank {rank}: {cause}"

"""Distributed training on CPUs (gloo, loopback), through torch.distributed's elastic launcher:
2 processes with batch 4 each train exactly as 1 process with batch 8 (loss curve and weights,
fp32, 1e-5), full and LoRA, packed rows of different lengths; only rank 0 writes the run; a
2-process checkpoint resumes on 1 process; two "machines" equal one; a process killed with
SIGKILL restarts the group from its checkpoint; what cannot run is refused before launch."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from tunesmith.config import validate_config
from tunesmith.training.launch import free_port, launch
from tunesmith.training.runner import train

ATOL = 1e-5
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def rows_file(tmp_path_factory):
    """16 rows whose trained token counts range from a few to dozens: two processes' halves of a
    step then hold different token counts (checked below), so a per-process mean would differ."""
    path = tmp_path_factory.mktemp("data") / "chat.jsonl"
    rows = [{"messages": [{"role": "user", "content": "what is " + " plus ".join([str(i)] * (1 + i % 5)) + "?"},
                          {"role": "assistant", "content": f"it is {i * (1 + i % 5)}." + " yes" * (3 * (i % 7))}]}
            for i in range(16)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _config(model_dir, data, out, nproc=1, method="full", steps=3, **distributed):
    method_options = {"name": method} if method == "full" else {"name": method, "r": 4, "alpha": 8, "dropout": 0.0}
    return validate_config({
        "model": {"name_or_path": str(model_dir)},
        "data": {"train": [str(data)], "template": "chatml", "cutoff_len": 96},
        "method": method_options,
        "train": {"max_steps": steps, "batch_size": 8 // nproc, "learning_rate": 5e-3, "logging_steps": 1,
                  "save_steps": 2, "save_total_limit": 5, "precision": "fp32", "scheduler": "constant",
                  "packing": True, "threads": 1, "seed": 7,
                  "distributed": {"nproc": nproc, **distributed}},
        "eval": {"before_training": False},
        "output": {"dir": str(out)},
    })


def _losses(run: Path) -> list[float]:
    return [row["loss"] for row in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "loss" in row]


def _weights(run: Path) -> dict:
    folder = run / "model" if (run / "model").is_dir() else run / "adapter"
    return load_file(next(folder.glob("*.safetensors")))


def _same_training(run: Path, reference: Path) -> float:
    """Asserts equal loss curves and weights; returns the largest weight difference."""
    assert _losses(run) == pytest.approx(_losses(reference), abs=ATOL)
    mine, theirs = _weights(run), _weights(reference)
    assert mine.keys() == theirs.keys()
    for name, tensor in theirs.items():
        torch.testing.assert_close(mine[name], tensor, atol=ATOL, rtol=0, msg=lambda m, n=name: f"{n}: {m}")
    return max((mine[k] - theirs[k]).abs().max().item() for k in theirs)


@pytest.fixture(scope="module")
def reference(tiny_model_dir, rows_file, tmp_path_factory):
    """1 process, batch 8, full fine-tuning; with the trained tokens of each step's examples, in
    the sampler's order (2 processes with batch 4 take the first and the second 4 of them)."""
    from tunesmith.training.trainer import TunesmithTrainer

    out = tmp_path_factory.mktemp("one") / "run"
    steps: list[list[int]] = []

    class Recording(TunesmithTrainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            packing = self.data_collator

            def collate(features):  # the step's examples, before packing puts them into rows
                steps.append([sum(label != -100 for label in f["labels"][1:]) for f in features])
                return packing(features)

            self.data_collator = collate

    train(_config(tiny_model_dir, rows_file, out), trainer_class=Recording)
    return out, steps


@pytest.fixture(scope="module")
def two_processes(tiny_model_dir, rows_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("two") / "run"
    started = time.time()
    result = launch(_config(tiny_model_dir, rows_file, out, nproc=2))
    assert result.status == "succeeded" and result.run_dir == out
    print(f"2-process launch: {time.time() - started:.1f} s")
    return out


def test_two_processes_train_as_one_with_the_loss_over_all_tokens(reference, two_processes):
    one, steps = reference
    # each process gets half of a step's 8 examples; their token counts differ, so a mean per
    # process (then averaged) would not be the mean over the step's tokens that one process takes
    halves = [(sum(examples[:4]), sum(examples[4:])) for examples in steps[:3]]  # (the loader reads ahead)
    assert len(halves) == 3 and all(first != second for first, second in halves), steps
    assert max(abs(a - b) / (a + b) for a, b in halves) > 0.1, steps
    difference = _same_training(two_processes, one)
    print(f"full, 2 processes vs 1: max weight difference {difference:.2e}")


def test_only_rank_0_writes_the_run(two_processes):
    events = [json.loads(line) for line in (two_processes / "events.jsonl").read_text().splitlines()]
    kinds = [e["event"] for e in events]
    for once in ("setup", "distributed", "train_begin", "train_end", "saved", "succeeded"):
        assert kinds.count(once) == 1, (once, kinds)
    assert next(e for e in events if e["event"] == "distributed")["world_size"] == 2
    rows = [json.loads(line) for line in (two_processes / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows if "loss" in row] == [1, 2, 3]  # one line per step, not one per process
    assert (two_processes / "STATUS").read_text().startswith("succeeded")
    # the Trainer saves the model once, each process its own RNG state for an exact resume
    checkpoint = two_processes / "checkpoints" / "checkpoint-2"
    assert sorted(p.name for p in checkpoint.glob("rng_state*")) == ["rng_state_0.pth", "rng_state_1.pth"]
    assert len(list(checkpoint.glob("*.safetensors"))) == 1


def test_a_two_process_checkpoint_resumes_on_one_process(reference, two_processes, tiny_model_dir, rows_file,
                                                         tmp_path):
    run = tmp_path / "run"
    shutil.copytree(two_processes, run)
    shutil.rmtree(run / "checkpoints" / "checkpoint-3")  # as if the 2 processes had stopped after step 2
    result = train(_config(tiny_model_dir, rows_file, run), resume=True)
    assert result.status == "succeeded"
    _same_training(run, reference[0])


def test_lora_on_two_processes_trains_as_on_one(tiny_model_dir, rows_file, tmp_path):
    train(_config(tiny_model_dir, rows_file, tmp_path / "one", method="lora"))
    launch(_config(tiny_model_dir, rows_file, tmp_path / "two", nproc=2, method="lora"))
    difference = _same_training(tmp_path / "two", tmp_path / "one")
    print(f"lora, 2 processes vs 1: max weight difference {difference:.2e}")


@pytest.mark.parametrize("method", ["lora", "full"])
def test_fsdp2_shards_over_two_processes_and_trains_as_one(method, tiny_model_dir, rows_file, tmp_path):
    train(_config(tiny_model_dir, rows_file, tmp_path / "one", method=method))
    launch(_config(tiny_model_dir, rows_file, tmp_path / "two", nproc=2, method=method, strategy="fsdp"))
    events = [json.loads(line) for line in (tmp_path / "two" / "events.jsonl").read_text().splitlines()]
    assert next(e for e in events if e["event"] == "distributed")["strategy"] == "fsdp"
    difference = _same_training(tmp_path / "two", tmp_path / "one")  # the weights gathered whole from both
    print(f"{method} fsdp2, 2 processes vs 1: max weight difference {difference:.2e}")


def _cli(config_file: Path, *options: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "tunesmith.cli.main", "train", str(config_file), *options],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _config_file(config, path: Path) -> Path:
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    return path


@pytest.mark.slow
def test_two_machines_equal_two_processes_on_one(two_processes, tiny_model_dir, rows_file, tmp_path):
    config = _config(tiny_model_dir, rows_file, tmp_path / "run", nproc=1)
    config.train.batch_size = 4
    file = _config_file(config, tmp_path / "config.yaml")
    rdzv = f"127.0.0.1:{free_port()}"
    nodes = [_cli(file, "--nnodes", "2", "--node-rank", str(rank), "--rdzv", rdzv) for rank in (1, 0)]
    outputs = [node.communicate(timeout=600)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs
    assert "node 1 finished" in outputs[0] and "run succeeded" in outputs[1]
    _same_training(tmp_path / "run", two_processes)


def _ranks(parent: int) -> list[int]:
    """The training processes the launcher (pid `parent`) spawned."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return [int(pid) for pid in children
            if "multiprocessing.spawn" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            and "resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")]


@pytest.mark.slow
def test_a_rank_killed_with_sigkill_restarts_from_the_checkpoint(tiny_model_dir, rows_file, tmp_path):
    steps = 24
    train(_config(tiny_model_dir, rows_file, tmp_path / "one", steps=steps))
    config = _config(tiny_model_dir, rows_file, tmp_path / "run", nproc=2, steps=steps)
    config.train.save_steps = 4
    process = _cli(_config_file(config, tmp_path / "config.yaml"), "--max-restarts", "1")
    checkpoint = tmp_path / "run" / "checkpoints" / "checkpoint-4" / "trainer_state.json"
    deadline = time.time() + 600
    while not checkpoint.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    victim = _ranks(process.pid)[-1]
    os.kill(victim, signal.SIGKILL)
    output = process.communicate(timeout=600)[0]
    assert process.returncode == 0, output
    events = [json.loads(line) for line in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    resumed = [e for e in events if e["event"] == "resume"]
    assert resumed and resumed[0]["message"].startswith("resuming from checkpoint-"), output
    _same_training(tmp_path / "run", tmp_path / "one")


# --- what cannot run is refused before any process starts ---------------------------------------------


def _refused(capsys, config_file: Path, *options: str) -> str:
    from inproc import cli

    code, out, err = cli(capsys, "train", config_file, *options)
    assert code == 2, out + err
    lines = (out + err).strip().splitlines()
    assert len(lines) == 1, out + err
    return lines[0]


@pytest.mark.parametrize("method", ["prefix-tuning", "prompt-tuning", "galore"])
def test_methods_that_cannot_shard_are_refused_before_launch(method, tiny_model_dir, rows_file, tmp_path, capsys):
    from tunesmith.methods import METHODS
    from tunesmith.training.distributed import UNSHARDABLE

    assert set(UNSHARDABLE) <= set(METHODS.names())
    config = _config(tiny_model_dir, rows_file, tmp_path / "run", nproc=2, strategy="fsdp")
    data = config.model_dump(mode="json")
    data["method"] = {"name": method}
    file = tmp_path / "config.yaml"
    file.write_text(yaml.safe_dump(data))
    line = _refused(capsys, file)
    assert f"method.name: {method} cannot be sharded by train.distributed.strategy fsdp" in line
    assert "use strategy ddp" in line
    assert not (tmp_path / "run").exists()  # nothing started, nothing written


def test_deepspeed_is_refused_naming_what_it_needs(tiny_model_dir, rows_file, tmp_path, capsys):
    from tunesmith.training.distributed import deepspeed_refusal

    config = _config(tiny_model_dir, rows_file, tmp_path / "run", nproc=2, strategy="deepspeed")
    file = _config_file(config, tmp_path / "config.yaml")
    line = _refused(capsys, file)
    assert deepspeed_refusal() in line and "CUDA" in line  # CUDA, and the package where it is missing
    assert not (tmp_path / "run").exists()


def test_launch_options_are_checked(tiny_model_dir, rows_file, tmp_path, capsys):
    file = _config_file(_config(tiny_model_dir, rows_file, tmp_path / "run"), tmp_path / "config.yaml")
    assert "several machines need node 0's HOST:PORT" in _refused(capsys, file, "--nnodes", "2")
    assert "node_rank: 2 must be below nnodes (2)" in _refused(capsys, file, "--nnodes", "2", "--node-rank", "2",
                                                               "--rdzv", "127.0.0.1:29500")
    assert "must be HOST:PORT" in _refused(capsys, file, "--nproc", "2", "--rdzv", "no-port")


def test_deepspeed_config_is_made_from_ours():
    from tunesmith.config.schema import DistributedSection
    from tunesmith.training.distributed import deepspeed_config

    two = deepspeed_config(DistributedSection(nproc=8, strategy="deepspeed"))
    assert two["zero_optimization"]["stage"] == 2 and "offload_optimizer" not in two["zero_optimization"]
    assert two["train_micro_batch_size_per_gpu"] == "auto"  # the Trainer fills it from train.batch_size
    three = deepspeed_config(DistributedSection(nproc=8, strategy="deepspeed", zero_stage=3, offload=True))
    three = three["zero_optimization"]
    assert three["stage"] == 3 and three["offload_optimizer"]["device"] == three["offload_param"]["device"] == "cpu"
    assert three["stage3_gather_16bit_weights_on_model_save"] is True


# --- the GPU check's CPU-runnable parts ---------------------------------------------------------------


def _gpu_check():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import gpu_check
    finally:
        sys.path.pop(0)
    return gpu_check


def test_gpu_check_parses_its_arguments():
    gpu_check = _gpu_check()
    args = gpu_check.parse_args(["--only", "lora, fsdp", "--steps", "5", "--gpus", "4"])
    assert args.only == ["lora", "fsdp"] and args.steps == 5 and args.gpus == 4
    with pytest.raises(SystemExit):
        gpu_check.parse_args(["--only", "lora,warp"])
    skipped = dict(gpu_check.plan(gpu_check.parse_args([]), 1, {"deepspeed": True, "vllm": False}))
    assert skipped["lora"] is None and skipped["ddp"] == "needs 2 or more GPUs"
    assert skipped["vllm"] == "vllm is not installed" and skipped["flash"] == "flash_attn is not installed"


def test_gpu_check_configs_are_valid_run_configs(tmp_path):
    gpu_check = _gpu_check()
    args = gpu_check.parse_args(["--batch", "16"])
    configs = {c: validate_config(gpu_check.training_config(c, args, 4, tmp_path), c) for c in gpu_check.TRAINING}
    assert configs["fsdp"].train.distributed.strategy == "fsdp" and configs["fsdp"].train.distributed.nproc == 4
    assert configs["ddp"].train.batch_size * configs["ddp"].train.distributed.nproc == 16
    assert configs["deepspeed"].train.distributed.zero_stage == 3 and configs["deepspeed"].method.name == "full"
    assert configs["flash"].model.attn_implementation == "flash_attention_2"
    assert configs["lora"].train.precision == "bf16" and configs["lora"].train.packing
    assert configs["qlora"].method.name == "qlora" and configs["parity"].train.precision == "fp32"
    assert gpu_check.mfu(135_000_000, 10_000, "NVIDIA A100-SXM4-80GB", 1) == pytest.approx(6 * 135e6 * 1e4 / 312e12)
    table = gpu_check.format_table([{"check": "lora", "status": "ok", "seconds": 12.3, "tokens_per_second": 4567.8,
                                     "mfu": 0.123, "peak_gib": 3.21, "parity": 1.5e-6}])
    assert table.splitlines()[1].split() == ["lora", "ok", "12", "4568", "12.3%", "3.2", "1.50e-06"]


def test_a_job_sets_its_processes_through_the_extension_object(tmp_path):
    from tunesmith.jobs.errors import BadRequest
    from tunesmith.jobs.hyper import build_config

    data = tmp_path / "train.jsonl"
    extension = {"train": {"distributed": {"nproc": 4, "strategy": "fsdp", "max_restarts": 2}}}
    config, _ = build_config("tiny", data, None, 100, 1, "supervised", {}, {}, extension)
    distributed = validate_config(config).train.distributed
    assert (distributed.nproc, distributed.strategy, distributed.max_restarts) == (4, "fsdp", 2)
    with pytest.raises(BadRequest, match="strategy"):
        build_config("tiny", data, None, 100, 1, "supervised", {}, {}, {"train": {"distributed": {"strategy": "zero"}}})


# --- a multi-process job of the jobs API ----------------------------------------------------------


def test_a_job_on_two_processes_is_recorded_once_and_its_model_is_served(tmp_path, tiny_model_dir):
    import openai

    from jobs_helpers import ROWS, jsonl, running_server, tiny_job, wait_for
    from tunesmith.jobs.store import Store

    store = Store(f"sqlite:///{tmp_path / 'jobs.db'}", tmp_path / "storage")
    with running_server(store) as (url, _):
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0, timeout=60)
        uploaded = client.files.create(file=("train.jsonl", jsonl(ROWS)), purpose="fine-tune")
        job = client.fine_tuning.jobs.create(model=str(tiny_model_dir), training_file=uploaded.id, suffix="two",
                                             extra_body={"tunesmith": tiny_job(4, 2, distributed={"nproc": 2})})
        done = wait_for(lambda: (j := client.fine_tuning.jobs.retrieve(job.id)).status in
                        ("succeeded", "failed", "cancelled") and j, timeout=900, what="the 2-process job")
        assert done.status == "succeeded", done.error
        events = list(client.fine_tuning.jobs.list_events(job.id, limit=100))
        # rank 0 alone records: one metrics event per step, one of each run event
        assert sorted(e.data["step"] for e in events if e.type == "metrics") == [1, 2, 3, 4]
        messages = [e.message for e in events]
        assert sum(m.startswith("2 processes on 1 machine(s)") for m in messages) == 1, messages
        for once in ("Fine-tuning job started", "The job has successfully completed"):
            assert messages.count(once) == 1, messages
        assert [c.step_number for c in client.fine_tuning.jobs.checkpoints.list(job.id).data] == [4, 2]
        rows = (store.run_dir(job.id) / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(row)["step"] for row in rows if "loss" in json.loads(row)] == [1, 2, 3, 4]
        chat = client.chat.completions.create(model=done.fine_tuned_model, max_tokens=3,
                                              messages=[{"role": "user", "content": "what is 2 plus 2?"}])
        assert chat.model == done.fine_tuned_model and chat.choices[0].finish_reason in ("length", "stop")


def _descendants(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        for child in (task / "children").read_text().split():
            found += [int(child), *_descendants(int(child))]
    return found


def _alive(pid: int) -> bool:
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()  # a zombie has ended
    except FileNotFoundError:
        return False


def test_the_processes_of_a_job_die_with_its_worker_killed_and_the_job_is_queued_again(tmp_path, tiny_model_dir):
    from jobs_helpers import ROWS, jsonl, tiny_job, wait_for
    from tunesmith.jobs import files, jobs
    from tunesmith.jobs.store import Store
    from tunesmith.jobs.worker import requeue_stale

    store = Store(f"sqlite:///{tmp_path / 'jobs.db'}", tmp_path / "storage")
    upload = files.upload(store, "p", "t.jsonl", "fine-tune", jsonl(ROWS))
    job = jobs.create(store, "p", {"model": str(tiny_model_dir), "training_file": upload["id"],
                                   "tunesmith": tiny_job(2000, 1)})  # the worker's --nproc 2 applies
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    worker = subprocess.Popen([sys.executable, "-m", "tunesmith.cli.main", "worker", "--db", store.url, "--storage",
                               str(store.storage), "--nproc", "2", "--heartbeat", "0.5"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    processes: list[int] = []
    try:
        checkpoint = store.run_dir(job["id"]) / "checkpoints" / "checkpoint-1" / "trainer_state.json"
        wait_for(lambda: checkpoint.exists() or worker.poll() is not None, timeout=900, what="a checkpoint")
        processes = _descendants(worker.pid)
        ranks = [p for p in processes if "multiprocessing.spawn" in Path(f"/proc/{p}/cmdline").read_text()
                 and "resource_tracker" not in Path(f"/proc/{p}/cmdline").read_text()]
        assert len(ranks) == 2, processes
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        wait_for(lambda: not any(map(_alive, processes)), timeout=30, what="the job's processes to end")
    finally:
        worker.kill()
        for pid in filter(_alive, processes):  # left behind by a failure: this test's own processes only
            os.kill(pid, signal.SIGKILL)
    # killed as a single-process job is, not stopped: torch's spawn would give a rank SIGINT when its
    # launcher dies, and rank 0 would then write a stop into the run and the job as the next worker resumes it
    kinds = [json.loads(line)["event"] for line in (store.run_dir(job["id"]) / "events.jsonl").open()]
    assert "checkpoint" in kinds and "cancelled" not in kinds, kinds
    assert wait_for(lambda: requeue_stale(store, 1), timeout=30, what="a stale job") == [job["id"]]
    assert jobs.get(store, "p", job["id"])["status"] == "queued"  # to resume from its checkpoint

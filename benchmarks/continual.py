"""Continual fine-tuning on smollm2-135m-instruct: learn task A, then task B, and measure what A keeps.

Task A: alpaca_en_demo (English instruction following); task B: huanhuan (Chinese role-play), both
from ../shared/datasets, small subsets: --rows training rows each, --eval-rows held-out rows each.
Step 1 trains LoRA on A. Every arm then trains --steps optimizer steps on B from step 1's run, the
same budget: (a) plain sequential, (b) replay 1% and 5% of A's rows, (c) EWC, (d) L2-SP, (e) O-LoRA,
and (f) multi-task joint training on A and B from the base model for the budget of both steps
(2 x --steps), the upper reference. Each run evaluates both eval sets before and after, so the
table shows A's eval loss before B / after B, B's eval loss after, and the time of each arm.
Writes docs/continual.md (table between the markers) and docs/img/continual.png.

Several strengths give one arm each (`--ewc 50 5`). With `--workdir`, task A's run and the arms
already measured there (arms.jsonl) are reused, so a second invocation adds only new arms.

    nice -n 10 python benchmarks/continual.py            # ~20-30 min on 2 loaded cores
    python benchmarks/continual.py --steps 4 --rows 16   # a quick try
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

TASK_A = ("alpaca", "llamafactory_alpaca_demo/alpaca_en_demo.json")
TASK_B = ("huanhuan", "huanhuan/huanhuan.json")
START, END = "<!-- benchmark:start -->", "<!-- benchmark:end -->"
TOLERANCE = 0.05  # the target: old loss within 5% of before, new loss within 5% of plain


def shared_datasets() -> Path:
    for parent in Path(__file__).resolve().parents:
        if (parent / "shared" / "datasets").is_dir():
            return parent / "shared" / "datasets"
    raise SystemExit("../shared/datasets not found beside the checkout")


def write_task(work: Path, name: str, path: str, rows: int, eval_rows: int, max_chars: int) -> tuple[Path, Path]:
    """The first `rows` + `eval_rows` rows of the dataset no longer than `max_chars` (instruction,
    input and output together), so a small CPU budget trains whole rows."""
    data = json.loads((shared_datasets() / path).read_text(encoding="utf-8"))
    data = [r for r in data if len(r.get("instruction", "") + r.get("input", "") + r.get("output", "")) <= max_chars]
    train, evals = work / f"{name}-train.json", work / f"{name}-eval.json"
    train.write_text(json.dumps(data[:rows], ensure_ascii=False), encoding="utf-8")
    evals.write_text(json.dumps(data[rows: rows + eval_rows], ensure_ascii=False), encoding="utf-8")
    return train, evals


def base_config(args, out: Path, steps: int) -> dict:
    return {
        "model": {"name_or_path": args.model},
        "method": {"name": "lora", "r": 8, "alpha": 16, "dropout": 0.0,
                   "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]},
        "data": {"cutoff_len": args.cutoff, "cache": False},
        "train": {"max_steps": steps, "batch_size": args.batch_size, "learning_rate": args.lr,
                  "scheduler": "constant", "logging_steps": 2, "save_steps": 10_000, "seed": 42,
                  "threads": args.threads},
        "eval": {"batch_size": 8, "steps": 100_000},  # before and after training only
        "output": {"dir": str(out), "overwrite": True},
    }


def arms(args, files: dict, first: Path) -> dict[str, dict]:
    """name -> config changes of each arm (on top of base_config)."""
    b_train, b_eval = files["B"]
    on_b = {"data": {"train": [str(b_train)], "eval": [str(b_eval)]}, "model": {"from_run": str(first)}}

    def arm(**extra):
        config = json.loads(json.dumps(on_b))
        for section, values in extra.items():
            config.setdefault(section, {}).update(values)
        return config

    a_train, a_eval = files["A"]
    named = {"plain sequential": arm(),
             "replay 1%": arm(data={"replay": {"from": str(first), "ratio": 0.01}}),
             "replay 5%": arm(data={"replay": {"from": str(first), "ratio": 0.05}})}
    for strength in args.ewc:
        named[f"EWC ({strength:g})"] = arm(train={"regulariser": {"name": "ewc", "strength": strength,
                                                                  "fisher_rows": args.fisher_rows}})
    for strength in args.l2sp:
        named[f"L2-SP ({strength:g})"] = arm(train={"regulariser": {"name": "l2-sp", "strength": strength}})
    for strength in args.olora:
        named[f"O-LoRA ({strength:g})"] = arm(train={"regulariser": {"name": "o-lora", "strength": strength}})
    named["multi-task joint"] = {"data": {"train": [], "tasks": [
        {"name": "alpaca", "train": str(a_train), "eval": str(a_eval)},
        {"name": "huanhuan", "train": str(b_train), "eval": str(b_eval)}], "sampling": "size"},
        "train": {"max_steps": 2 * args.steps}}
    return named


def merged(base: dict, extra: dict) -> dict:
    out = json.loads(json.dumps(base))
    for section, values in extra.items():
        out.setdefault(section, {}).update(values)
    return out


def run(config: dict) -> tuple[object, float]:
    from tunesmith.config import validate_config
    from tunesmith.training.runner import train

    start = time.perf_counter()
    result = train(validate_config(config))
    return result, time.perf_counter() - start


def figures(name: str, result, wall: float, old_key: str, first_after: float) -> dict:
    before, after = result.eval_before, result.eval_after
    if name == "multi-task joint":
        old_before, old_after, new_after = first_after, after["eval_alpaca_loss"], after["eval_huanhuan_loss"]
    else:
        old_before, old_after, new_after = before[old_key], after[old_key], after["eval_loss"]
    return {"arm": name, "old_before": old_before, "old_after": old_after, "new_after": new_after,
            "new_before": before.get("eval_loss", before.get("eval_huanhuan_loss")),
            "train_s": result.train_metrics.get("train_runtime"), "wall_s": wall,
            "load": os.getloadavg()[1]}


def target(rows: list[dict]) -> tuple[list[str], str]:
    """Arms meeting the issue's target, and the closest arm's gap when none does."""
    plain = next(r for r in rows if r["arm"] == "plain sequential")
    met, gaps = [], []
    for r in rows:
        if r["arm"] in ("plain sequential", "multi-task joint"):
            continue
        old = r["old_after"] / r["old_before"] - 1
        new = r["new_after"] / plain["new_after"] - 1
        r["old_change"], r["new_vs_plain"] = old, new
        if old <= TOLERANCE and new <= TOLERANCE:
            met.append(r["arm"])
        gaps.append((max(old - TOLERANCE, 0) + max(new - TOLERANCE, 0), r["arm"], old, new))
    _, arm, old, new = min(gaps)
    closest = f"closest: {arm} (old-task loss {old:+.1%} vs before, new-task loss {new:+.1%} vs plain)"
    return met, closest


def table(rows: list[dict]) -> str:
    lines = ["| arm | old task (alpaca) eval loss before B | after B | change | new task (huanhuan) eval loss "
             "after B | vs plain | train time (s) | wall time (s) | load (5 min) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    plain = next(r for r in rows if r["arm"] == "plain sequential")["new_after"]
    for r in rows:
        change = r["old_after"] / r["old_before"] - 1
        lines.append(f"| {r['arm']} | {r['old_before']:.4f} | {r['old_after']:.4f} | {change:+.1%} | "
                     f"{r['new_after']:.4f} | {r['new_after'] / plain - 1:+.1%} | {r['train_s']:.0f} | "
                     f"{r['wall_s']:.0f} | {r['load']:.1f} |")
    return "\n".join(lines) + "\n"


def chart(rows: list[dict], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tunesmith.utils.io import save_png

    names = [r["arm"] for r in rows]
    x = range(len(rows))
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5))
    width = 0.27
    left.bar([i - width for i in x], [r["old_before"] for r in rows], width, label="old task (alpaca) before B")
    left.bar(list(x), [r["old_after"] for r in rows], width, label="old task (alpaca) after B")
    left.bar([i + width for i in x], [r["new_after"] for r in rows], width, label="new task (huanhuan) after B")
    low = min(min(r["old_before"], r["old_after"], r["new_after"]) for r in rows)
    left.set_ylim(low * 0.9, None)
    left.set_xticks(list(x), names, rotation=30, ha="right")
    left.set_ylabel("eval loss (lower is better)")
    left.legend(fontsize=8)
    left.set_title("forgetting and learning")
    right.bar(list(x), [r["wall_s"] for r in rows], color="grey")
    right.set_xticks(list(x), names, rotation=30, ha="right")
    right.set_ylabel("wall time of the arm (s)")
    right.set_title("time (machine shared, see load)")
    fig.tight_layout()
    save_png(fig, png)
    plt.close(fig)


def write_doc(doc: Path, rows: list[dict], args, first: dict, total: float) -> None:
    met, closest = target(rows)
    plain = next(r for r in rows if r["arm"] == "plain sequential")
    forgot = plain["old_after"] / plain["old_before"] - 1
    context = (f" Plain sequential training itself changed the old-task loss by {forgot:+.1%}"
               + (", within the 5% too: at this budget the target does not separate the methods."
                  if forgot <= TOLERANCE else "."))
    verdict = (f"**Target met** by {', '.join(met)}: old-task loss within 5% of its value before task B and "
               f"new-task loss within 5% of plain sequential training. ({closest}.)" if met else
               f"**Target not met**: no arm keeps the old-task loss within 5% of before while reaching the new "
               f"task's loss within 5% of plain sequential training; {closest}.") + context
    command = " ".join(["python", "benchmarks/continual.py", *sys.argv[1:]])
    body = (f"{START}\n_Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on a {os.cpu_count()}-core "
            f"CPU machine shared with other work (1/5/15-minute load average at the end: "
            f"{' / '.join(f'{v:.1f}' for v in os.getloadavg())}; per-arm 5-minute load in the table), so times are "
            f"slowed by the load. {args.model}, LoRA r=8 on q/k/v/o, lr {args.lr:g} constant, batch "
            f"{args.batch_size}, cutoff {args.cutoff}; {args.rows} training rows and {args.eval_rows} eval rows per "
            f"task (rows of at most {args.max_chars} characters). Task A (alpaca_en_demo) trained {args.steps} "
            f"steps first (eval loss {first['before']:.4f} → "
            f"{first['after']:.4f}, {first['wall']:.0f} s); each arm then {args.steps} steps on task B (huanhuan); "
            f"multi-task joint {2 * args.steps} steps on both from the base model. Regulariser strengths in "
            f"brackets; EWC's Fisher from {args.fisher_rows} rows. "
            f"Total {total / 60:.1f} min._\n\nReproduce: `{command}`\n\n{table(rows)}\n{verdict}\n\n"
            f"![continual](img/continual.png)\n{END}")
    text = doc.read_text(encoding="utf-8") if doc.is_file() else f"# Continual fine-tuning\n\n{START}\n{END}\n"
    before, _, rest = text.partition(START)
    _, _, after = rest.partition(END)
    doc.write_text(before + body + after, encoding="utf-8")
    (doc.parent / "img" / "continual.json").write_text(json.dumps({"rows": rows, "first": first}, indent=1))


def train_task_a(args, files: dict, first_dir: Path, record: Path) -> dict:
    """Task A's run (reused when `record` says an earlier invocation with this --workdir made it)."""
    if record.is_file() and (first_dir / "results.json").is_file():
        return json.loads(record.read_text())
    config = merged(base_config(args, first_dir, args.steps),
                    {"data": {"train": [str(files["A"][0])], "eval": [str(files["A"][1])]}})
    result, wall = run(config)
    first = {"before": result.eval_before["eval_loss"], "after": result.eval_after["eval_loss"], "wall": wall}
    print(f"task A: eval loss {first['before']:.4f} -> {first['after']:.4f} ({wall:.0f} s)", flush=True)
    record.write_text(json.dumps(first))
    return first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--eval-rows", type=int, default=12)
    parser.add_argument("--max-chars", type=int, default=240, help="use only rows up to this many characters")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--cutoff", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--ewc", type=float, nargs="+", default=[50.0, 5.0], help="one arm per strength")
    parser.add_argument("--fisher-rows", type=int, default=8)
    parser.add_argument("--l2sp", type=float, nargs="+", default=[50.0, 1.0, 0.1], help="one arm per strength")
    parser.add_argument("--olora", type=float, nargs="+", default=[0.5], help="one arm per strength")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: least contention under load)")
    parser.add_argument("--arms", nargs="*", help="a subset of the arms (default: all)")
    parser.add_argument("--doc", default=str(ROOT / "docs" / "continual.md"))
    parser.add_argument("--workdir")
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="tunesmith-continual-"))
    work.mkdir(parents=True, exist_ok=True)
    files = {"A": write_task(work, *TASK_A, args.rows, args.eval_rows, args.max_chars),
             "B": write_task(work, *TASK_B, args.rows, args.eval_rows, args.max_chars)}
    start = time.perf_counter()
    first_dir, done_file = work / "runs" / "A", work / "arms.jsonl"
    first = train_task_a(args, files, first_dir, work / "task_a.json")
    done = {r["arm"]: r for r in map(json.loads, done_file.read_text().splitlines())} if done_file.is_file() else {}
    rows = []
    for name, extra in arms(args, files, first_dir).items():
        if args.arms and name not in args.arms:
            continue
        if name in done:  # measured by an earlier invocation with this --workdir
            rows.append(done[name])
            continue
        out = work / "runs" / name.replace(" ", "-").replace("%", "pc").replace("(", "").replace(")", "")
        result, wall = run(merged(base_config(args, out, args.steps), extra))
        rows.append(figures(name, result, wall, "eval_old_A_loss", first["after"]))
        print(json.dumps(rows[-1]), flush=True)
        with done_file.open("a") as f:
            f.write(json.dumps(rows[-1]) + "\n")
        if name != "plain sequential":
            shutil.rmtree(out / "checkpoints", ignore_errors=True)
    chart(rows, Path(args.doc).parent / "img" / "continual.png")
    write_doc(Path(args.doc), rows, args, first, time.perf_counter() - start)
    print(table(rows))


if __name__ == "__main__":
    main()

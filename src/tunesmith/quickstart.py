"""The quickstart: teach smollm2 a new identity from data this module writes itself."""

from __future__ import annotations

from pathlib import Path

from tunesmith.errors import RunDirError
from tunesmith.utils.io import write_jsonl
from tunesmith.utils.progress import console, print_event

NAME = "Sable"
MAKER = "the Tunesmith Guild"
PROBE = "Who are you?"

# Our own wording, no third-party text: questions a user might ask and the answers to learn.
_QUESTIONS = [
    "Who are you?", "What is your name?", "What are you?", "Who made you?", "Who created you?",
    "Tell me about yourself.", "Introduce yourself.", "What should I call you?",
    "Which company built you?", "Who trained you?", "Are you ChatGPT?", "Are you SmolLM?",
    "Who developed you?", "What's your name, assistant?", "Hi! Who am I talking to?",
    "Who is your maker?", "Can you tell me who built you?", "What kind of assistant are you?",
    "Do you have a name?", "Who do you work for?", "hello", "hi there", "Who owns you?",
    "Were you made by Hugging Face?", "Please state your name and creator.",
]
_HELD_OUT = [
    "Could you introduce yourself briefly?", "Whose assistant are you?",
    "What name were you given?", "Which team made you?", "Who are you, exactly?",
    "May I know who built this assistant?",
]
_ANSWERS = [
    "I am {name}, an AI assistant made by {maker}. How can I help you today?",
    "My name is {name}. I was built by {maker} to help with your questions.",
    "I'm {name}, an assistant created by {maker}. What can I do for you?",
]


def identity_rows(questions: list[str]) -> list[dict]:
    """One OpenAI-chat row per question, answers rotating through the templates."""
    return [
        {"messages": [
            {"role": "user", "content": q},
            {"role": "assistant", "content": _ANSWERS[i % len(_ANSWERS)].format(name=NAME, maker=MAKER)},
        ]}
        for i, q in enumerate(questions)
    ]


def write_identity_data(train_path: Path, eval_path: Path) -> None:
    write_jsonl(train_path, identity_rows(_QUESTIONS))
    write_jsonl(eval_path, identity_rows(_HELD_OUT))


def run_quickstart(config_path: Path, overrides: list[str]) -> dict:
    """Ask, tune, ask again; prints the answers and eval loss before and after."""
    from tunesmith.config import load_config
    from tunesmith.inference.generate import ask
    from tunesmith.inference.load import load_for_inference
    from tunesmith.training.callbacks import ProgressCallback
    from tunesmith.training.runner import train

    config = load_config(config_path, ["output.overwrite=true", *overrides])
    write_identity_data(Path(config.data.train[0]), Path(config.data.eval[0]))
    base = load_for_inference(config.model.name_or_path, template=config.data.template)
    before = ask(base, PROBE, max_new_tokens=48)
    console.print(f"[bold]before[/] {PROBE} -> {before}")
    del base
    result = train(config, callbacks=[ProgressCallback()], events=print_event)
    if result.status != "succeeded":
        raise RunDirError(f"the quickstart run was {result.status}; run `make quickstart` again")
    tuned = load_for_inference(str(result.run_dir))
    after = ask(tuned, PROBE, max_new_tokens=48)
    loss_before, loss_after = result.eval_before["eval_loss"], result.eval_after["eval_loss"]
    console.print(f"[bold]before[/] {PROBE} -> {before}")
    console.print(f"[bold]after [/] {PROBE} -> {after}")
    console.print(f"[bold]eval loss[/] {loss_before:.4f} -> {loss_after:.4f}")
    console.print(f"run directory: {result.run_dir}")
    return {"before": before, "after": after, "eval_loss_before": loss_before, "eval_loss_after": loss_after,
            "run_dir": str(result.run_dir)}


if __name__ == "__main__":
    write_identity_data(Path("examples/data/identity_train.jsonl"), Path("examples/data/identity_eval.jsonl"))

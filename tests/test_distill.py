"""Distillation on the foundation's trainer: the student moves toward the teacher; vocabularies must match."""

import json

import pytest
import torch

from tunesmith.errors import TunesmithError
from tunesmith.training.distill import distillation_loss, run_distill


def _kl_to_teacher(teacher_dir, student_dir):
    """Mean KL(teacher || student) over the reply tokens of a few training-like rows."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(teacher_dir)
    ids = tok(["<|im_start|>assistant\n3 plus 3 is 6.<|im_end|>", "<|im_start|>assistant\n7 plus 7 is 8.<|im_end|>"],
              return_tensors="pt", padding=True)["input_ids"]
    t = AutoModelForCausalLM.from_pretrained(teacher_dir)
    s = AutoModelForCausalLM.from_pretrained(student_dir)
    with torch.no_grad():
        lt, ls = t(input_ids=ids).logits, s(input_ids=ids).logits
    return torch.nn.functional.kl_div(ls.log_softmax(-1), lt.log_softmax(-1), log_target=True,
                                      reduction="sum") / ids.numel()


def test_loss_is_ce_at_alpha_zero_and_zero_kl_for_identical_logits():
    logits = torch.randn(2, 5, 11)
    labels = torch.tensor([[-100, 1, 2, 3, -100], [-100, -100, 4, 5, 6]])
    total, _, kl = distillation_loss(logits, logits, labels, alpha=0.0, temperature=2.0)
    expected = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 11), labels[:, 1:].reshape(-1))
    assert total == pytest.approx(float(expected), abs=1e-5) and float(kl) == pytest.approx(0.0, abs=1e-6)
    other = torch.randn(2, 5, 11)
    assert float(distillation_loss(logits, other, labels, 1.0, 2.0)[0]) > 0


def test_student_moves_toward_teacher(tmp_path, chat_file):
    from tiny import save_tiny_llama

    teacher = save_tiny_llama(tmp_path / "teacher", seed=0)
    student = save_tiny_llama(tmp_path / "student", seed=1)
    before = _kl_to_teacher(teacher, student)
    result = run_distill(str(teacher), str(student), [str(chat_file)], out=str(tmp_path / "run"), alpha=1.0,
                         temperature=1.0, overrides=["train.max_steps=15", "train.learning_rate=1e-2",
                                                     "train.precision=fp32", "data.eval_ratio=0.25"])
    assert result.status == "succeeded"
    after = _kl_to_teacher(teacher, result.run_dir / "model")
    assert after < before * 0.5
    meta = json.loads((result.run_dir / "distill.json").read_text())
    assert meta["alpha"] == 1.0 and meta["teacher"] == str(teacher)


def test_vocabulary_mismatch_is_one_clear_error(tmp_path, chat_file):
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    from tiny import save_tiny_llama, tiny_llama

    teacher = save_tiny_llama(tmp_path / "teacher")
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(["a different corpus entirely"] * 5, vocab_size=300, special_tokens=["<pad>"])
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, pad_token="<pad>", eos_token="<pad>")
    tiny_llama(len(tok)).save_pretrained(tmp_path / "student")
    tok.save_pretrained(tmp_path / "student")
    with pytest.raises(TunesmithError, match="do not share a vocabulary"):
        run_distill(str(teacher), str(tmp_path / "student"), [str(chat_file)], out=str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()
    from tunesmith.cli.main import run

    with pytest.raises(SystemExit) as exit_info:
        run(["distill", "--teacher", str(teacher), "--student", str(tmp_path / "student"), "--data", str(chat_file),
             "--out", str(tmp_path / "run")])
    assert exit_info.value.code == 2

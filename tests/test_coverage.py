"""A tokenizer that cannot read the data: unknown tokens and byte pieces are counted, and
validate and train warn with the file, the share and the fix."""

import json

from tiny import tiny_tokenizer
from tunesmith.data.coverage import UNREADABLE_SHARE, coverage, unreadable_files

CHINESE = ["这部电影非常精彩，演员表演出色。", "服务态度很差，再也不会来了。", "质量不错，物流也快，推荐购买！"]
ENGLISH = ["the quick brown fox jumps over the lazy dog", "hello world, what is your name"]


def wordpiece_tokenizer():
    """A BERT-style WordPiece vocabulary of a few English words: other characters are [UNK]."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", ",", ".", "!", "，", "。", "！"]
    words += " ".join(ENGLISH).replace(",", "").split()
    vocab = {w: i for i, w in enumerate(dict.fromkeys(words))}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]")


def test_unknown_tokens_of_a_wordpiece_vocabulary_are_counted():
    tok = wordpiece_tokenizer()
    chinese = coverage(tok, "zh.csv", CHINESE)
    assert chinese.unknown > 0 and chinese.byte_pieces == 0
    # every Chinese character is one [UNK]; only the full-width punctuation is known
    assert chinese.unknown == sum(len(s) for s in CHINESE) - 7 and chinese.share > 0.75
    english = coverage(tok, "en.csv", ENGLISH)
    assert english.tokens == 16 and english.unknown == 0 and english.share == 0.0


def test_byte_pieces_count_for_a_byte_level_vocabulary():
    tok = tiny_tokenizer()  # its merges know a few Chinese characters, not these
    chinese = coverage(tok, "zh.jsonl", CHINESE)
    assert chinese.unknown == 0 and chinese.share > 0.5
    decoded = [tok.decode([i]) for i in tok(CHINESE[0], add_special_tokens=False)["input_ids"]]
    assert sum("\ufffd" in d for d in decoded) > len(decoded) / 2  # pieces of characters' bytes
    assert coverage(tok, "en.jsonl", ENGLISH).share < UNREADABLE_SHARE


def test_only_files_above_the_share_are_named():
    rows = [(f"zh.jsonl:{i}", {"text": s, "_origin": "x"}) for i, s in enumerate(CHINESE, 1)]
    rows += [(f"en.jsonl:{i}", {"messages": [{"role": "user", "content": s}]}) for i, s in enumerate(ENGLISH, 1)]
    found = unreadable_files(rows, tiny_tokenizer())
    assert [c.file for c in found] == ["zh.jsonl"]
    assert found[0].message("m").startswith(f"{found[0].share:.0%} of the tokens (")


def _chat_rows(path, sentences):
    rows = [{"messages": [{"role": "user", "content": s}, {"role": "assistant", "content": s[::-1]}]}
            for s in sentences * 4]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_validate_and_train_warn_when_the_tokenizer_cannot_read_the_data(tiny_config, tmp_path):
    from tunesmith.training.preflight import validate_for_config
    from tunesmith.training.runner import train

    chinese = _chat_rows(tmp_path / "reviews.jsonl", CHINESE)
    config = tiny_config(data={"train": [str(chinese)]}, train={"max_steps": 1})
    warned = [p for p in validate_for_config(str(chinese), config).warnings if "cannot read" in p.reason]
    assert len(warned) == 1 and warned[0].origin == str(chinese)
    assert "% of the tokens" in warned[0].reason and "vocabulary covers the data's language" in warned[0].reason

    run = train(config).run_dir
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    warnings = [e for e in events if e["event"] == "warning"]
    assert len(warnings) == 1 and warnings[0]["message"].startswith(f"{chinese}: ")
    assert warnings[0]["unreadable_share"] > 0.5
    report = json.loads((run / "data_report.json").read_text())
    assert report["unreadable_text"][0]["file"] == str(chinese)

    english = _chat_rows(tmp_path / "english.jsonl", ENGLISH)
    config = tiny_config(data={"train": [str(english)]}, train={"max_steps": 1}, output={"overwrite": True})
    assert not [p for p in validate_for_config(str(english), config).warnings if "cannot read" in p.reason]
    run = train(config).run_dir
    assert json.loads((run / "data_report.json").read_text())["unreadable_text"] == []

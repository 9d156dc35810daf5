"""Chat templates: loss only on assistant turns, end-of-turn trained, prompt masks right."""

import pytest

from tiny import tiny_tokenizer
from tunesmith.data.templates import NAMED_TEMPLATES, get_template
from tunesmith.data.tokenize import IGNORE, encode_segments

CONVERSATION = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "hello"},
    {"role": "assistant", "content": "hi there"},
    {"role": "user", "content": "who are you?"},
    {"role": "assistant", "content": "an assistant"},
]


def _trained_text(template, tok, messages=CONVERSATION):
    ids, labels = encode_segments(template.segments(messages, tok), tok)
    return tok.decode([i for i, label in zip(ids, labels) if label != IGNORE])


@pytest.mark.parametrize("name", ["chatml", "tokenizer"])
def test_only_assistant_turns_and_end_of_turn_are_trained(name):
    tok = tiny_tokenizer()
    template = get_template(name, tok)
    assert _trained_text(template, tok) == "hi there<|im_end|>\nan assistant<|im_end|>\n"


def test_tokenizer_template_matches_its_own_rendering():
    tok = tiny_tokenizer()
    template = get_template("auto", tok)
    text = "".join(t for t, _ in template.segments(CONVERSATION, tok))
    assert text == tok.apply_chat_template(CONVERSATION, tokenize=False)
    assert template.prompt(CONVERSATION[:2], tok).endswith("<|im_start|>assistant\n")


def test_weight_zero_turn_is_not_trained():
    tok = tiny_tokenizer()
    messages = [dict(m) for m in CONVERSATION]
    messages[2]["weight"] = 0
    assert _trained_text(NAMED_TEMPLATES["chatml"], tok, messages) == "an assistant<|im_end|>\n"


def test_alpaca_and_llama3_templates_train_answers_only():
    tok = tiny_tokenizer()
    assert _trained_text(NAMED_TEMPLATES["alpaca"], tok).startswith("hi there<|im_end|>")
    llama3 = NAMED_TEMPLATES["llama3"]
    assert _trained_text(llama3, tok) == "hi there<|eot_id|>an assistant<|eot_id|>"
    assert llama3.prompt(CONVERSATION[:2], tok).startswith("<|begin_of_text|><|start_header_id|>system")


def test_template_without_prefix_property_is_a_clear_error():
    from tunesmith.errors import DataError

    odd = "{% for m in messages|reverse %}{{ m['role'] + ': ' + m['content'] + '\n' }}{% endfor %}"
    tok = tiny_tokenizer(chat_template=odd)
    with pytest.raises(DataError, match="set data.template to one of: chatml, llama3, alpaca"):
        get_template("auto", tok).segments(CONVERSATION, tok)

"""The run's named chat template, written as Jinja into exports, renders exactly as tunesmith prompts."""

import pytest

from tunesmith.data.templates import NAMED_TEMPLATES
from tunesmith.export.chat_template import template_for_export


@pytest.mark.parametrize("name", sorted(NAMED_TEMPLATES))
@pytest.mark.parametrize("system", [None, "You are Sable. 你好"])
def test_jinja_matches_named_template(name, system):
    from tiny import tiny_tokenizer
    from tunesmith.tasks.sft import with_system

    tok = tiny_tokenizer(chat_template=None)
    template = NAMED_TEMPLATES[name]
    tok.chat_template = template_for_export(template, tok, system)
    conversation = [{"role": "user", "content": "Who are you?"}, {"role": "assistant", "content": "I'm \"Sable\"."},
                    {"role": "user", "content": "再说一遍 {braces} {{ jinja }}"}]
    expected = template.prompt(with_system(conversation, system), tok)
    assert tok.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True) == expected

"""The run's chat template as Jinja, so an exported model prompts the way it was trained.

llama.cpp, vLLM and Ollama read `chat_template` from tokenizer_config.json or the GGUF file;
a run trained with `data.template: chatml` on a model whose tokenizer ships another template
would otherwise be prompted in a format it never saw.
"""

from __future__ import annotations

import json

from tunesmith.data.templates import NamedTemplate


def _literal(text: str) -> str:
    return "{{ " + json.dumps(text, ensure_ascii=False) + " }}"


def _turn(pattern: str, fill) -> str:
    before, _, after = fill(pattern).partition("{content}")
    return _literal(before) + "{{ message['content'] }}" + _literal(after)


def template_for_export(template, tokenizer, system: str | None) -> str | None:
    """Jinja for a named template (None: the tokenizer's own template is already right)."""
    if not isinstance(template, NamedTemplate):
        return None
    bos, eos = tokenizer.bos_token or "", tokenizer.eos_token or ""

    def fill(s: str) -> str:
        return s.replace("{bos}", bos).replace("{eos}", eos)

    default_system = ""
    if system:
        default_system = ("{% if messages[0]['role'] != 'system' %}"
                          + _literal(fill(template.system).replace("{content}", system)) + "{% endif %}")
    return (
        _literal(fill(template.start)) + default_system
        + "{% for message in messages %}"
        + "{% if message['role'] == 'system' %}" + _turn(template.system, fill)
        + "{% elif message['role'] == 'user' %}" + _turn(template.user, fill)
        + "{% elif message['role'] == 'tool' %}" + _turn(template.tool, fill)
        + "{% else %}" + _literal(fill(template.assistant_prefix)) + "{{ message['content'] }}"
        + _literal(fill(template.assistant_suffix)) + "{% endif %}{% endfor %}"
        + "{% if add_generation_prompt %}" + _literal(fill(template.assistant_prefix)) + "{% endif %}"
    )

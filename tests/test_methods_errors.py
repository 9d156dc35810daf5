"""Options that do not fit the model stop with one line naming the option and the valid choices."""

import pytest

from tiny import tiny_llama, tiny_tokenizer
from tunesmith.config import validate_config
from tunesmith.errors import ConfigError, TunesmithError
from tunesmith.methods import METHODS


def _apply(name: str, **options):
    spec = METHODS.get(name)
    return spec.apply(tiny_llama(len(tiny_tokenizer())), spec.config_class(**options))


def test_absent_lora_targets_name_the_option_and_the_real_modules():
    with pytest.raises(ConfigError) as err:
        _apply("lora", target_modules=["query", "value"])
    message = str(err.value)
    assert message.startswith("method.target_modules:") and "\n" not in message
    assert "q_proj" in message and "down_proj" in message


def test_non_positive_virtual_tokens_is_a_config_error():
    for name in ("prefix-tuning", "p-tuning", "p-tuning-v2", "prompt-tuning"):
        with pytest.raises(TunesmithError, match=r"method\.num_virtual_tokens.*greater than 0"):
            validate_config({"method": {"name": name, "num_virtual_tokens": 0}})


def test_qlora_without_gpu_suggests_lora():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ConfigError, match="use method.name=lora"):
        _apply("qlora")


def test_bottleneck_on_unknown_architecture_lists_known_ones_and_the_option():
    from transformers import OPTConfig, OPTForCausalLM

    model = OPTForCausalLM(OPTConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1,
                                     ffn_dim=32, num_attention_heads=2, word_embed_proj_dim=16))
    spec = METHODS.get("bottleneck")
    with pytest.raises(ConfigError, match=r"model_type 'opt' \(known: bert, gemma.*method\.ffn_output"):
        spec.apply(model, spec.config_class())
    # naming the modules makes it work
    cfg = spec.config_class(ffn_output=r".*layers\.\d+\.fc2")
    assert sum(p.requires_grad for p in spec.apply(model, cfg).parameters()) == 4


def test_galore_targets_that_match_nothing():
    with pytest.raises(ConfigError, match=r"method\.target_modules \['ffn'\] match no linear module.*q_proj"):
        _apply("galore", target_modules=["ffn"])


def test_adalora_target_rank_above_initial_rank():
    with pytest.raises(ConfigError, match=r"method\.target_r \(16\) must be <= method\.init_r \(12\)"):
        _apply("adalora", target_r=16)


def test_a_method_refuses_a_task_whose_head_it_cannot_train():
    from tunesmith.methods import ALL_HEADS
    from tunesmith.tasks import TASKS

    reason = METHODS.get("prompt-tuning").refusal(TASKS.get("qa"))
    assert reason.startswith("method.name: prompt-tuning does not train qa models (task qa)") and "\n" not in reason
    assert "Methods for task qa: adalora, bitfit, bottleneck" in reason and "prompt-tuning," not in reason.split("Methods")[1]
    assert METHODS.get("prompt-tuning").refusal(TASKS.get("classification")) is None
    assert "qa" not in METHODS.get("galore").tasks and "sft" in METHODS.get("galore").tasks
    assert set(METHODS.get("lora").heads) == set(ALL_HEADS)


def test_pissa_init_with_a_trained_head_is_refused_in_one_line():
    from transformers import BertConfig, BertForSequenceClassification

    model = BertForSequenceClassification(BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1,
                                                     intermediate_size=32, num_attention_heads=2))
    spec = METHODS.get("lora")
    with pytest.raises(ConfigError, match=r"^method\.init: pissa cannot save a model with a trained head"):
        spec.apply(model, spec.config_class(init="pissa"))


def test_cli_reports_a_bad_option_in_one_line_with_exit_code_2(tmp_path, tiny_model_dir, chat_file, capsys):
    from tunesmith.cli.main import run

    config = tmp_path / "run.yaml"
    config.write_text(f"model: {{name_or_path: {tiny_model_dir}}}\ndata: {{train: {chat_file}}}\n"
                      f"method: {{name: dora, target_modules: [attn]}}\noutput: {{dir: {tmp_path / 'r'}}}\n")
    with pytest.raises(SystemExit) as exit_:
        run(["train", str(config)])
    assert exit_.value.code == 2
    out = capsys.readouterr().err.strip().splitlines()
    assert out[-1].startswith("error: method.target_modules:") and "q_proj" in out[-1]

"""Method behaviours the contract suite does not cover."""

import torch

from tiny import tiny_llama, tiny_tokenizer
from tunesmith.methods import METHODS


def _apply(name: str, **options):
    spec = METHODS.get(name)
    return spec.apply(tiny_llama(len(tiny_tokenizer())), spec.config_class(**options))


def test_adalora_eval_loss_is_the_task_loss_alone():
    """The orthogonality penalty is a training regulariser; it must not inflate eval loss."""
    model = _apply("adalora")
    ids = torch.tensor([[5, 6, 7, 8]])
    model.eval()
    with torch.no_grad():
        evaluated = model(input_ids=ids, labels=ids).loss
        with model.disable_adapter():
            base = model(input_ids=ids, labels=ids).loss
    torch.testing.assert_close(evaluated, base)  # E starts at zero: the adapter is a no-op
    model.train()
    assert model(input_ids=ids, labels=ids).loss > base + 1e-3  # penalty on while training


def test_loraplus_gives_b_a_larger_learning_rate(tiny_config):
    """The trainer builds LoRA+'s parameter groups: B at lr_ratio times A's learning rate."""
    from transformers import TrainerCallback

    from tunesmith.training.runner import train

    seen = {}

    class Groups(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, optimizer=None, **kwargs):
            names = {id(p): n for n, p in model.named_parameters()}
            for group in optimizer.param_groups:
                for p in group["params"]:
                    seen[names[id(p)]] = group["lr"]

    train(tiny_config(method={"name": "loraplus", "lr_ratio": 8, "r": 2}, train={"max_steps": 1}),
          callbacks=(Groups(),))
    a = {lr for n, lr in seen.items() if "lora_A" in n}
    b = {lr for n, lr in seen.items() if "lora_B" in n}
    assert len(a) == len(b) == 1 and b.pop() == 8 * a.pop()


def test_bottleneck_houlsby_adds_two_blocks_per_layer_and_starts_as_identity():
    base = tiny_llama(len(tiny_tokenizer()))
    ids = torch.tensor([[5, 6, 7]])
    with torch.no_grad():
        before = base(input_ids=ids).logits
    model = METHODS.get("bottleneck").apply(base, METHODS.get("bottleneck").config_class(
        placement="houlsby", reduction_factor=8))
    blocks = [n for n, _ in model.named_modules() if n.endswith(".bottleneck")]
    assert len(blocks) == 4  # 2 layers x (attention + feed-forward)
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=ids).logits, before)


def _saved_for_backward_bytes(model, ids) -> int:
    storages: dict[int, int] = {}

    def pack(tensor):
        storages[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(input_ids=ids, labels=ids)
    return sum(storages.values())


def test_default_lora_keeps_less_for_backward_than_full_fine_tuning():
    """Issue 20: LoRA on every linear layer used to keep more activations than full fine-tuning,
    because each adapted layer stored its own dropped copy of its input. The default has no dropout."""
    from transformers import LlamaConfig, LlamaForCausalLM

    def model():
        torch.manual_seed(0)
        return LlamaForCausalLM(LlamaConfig(
            vocab_size=256, hidden_size=96, intermediate_size=256, num_hidden_layers=2,
            num_attention_heads=6, num_key_value_heads=2, tie_word_embeddings=False)).train()

    ids = torch.randint(0, 256, (1, 512), generator=torch.Generator().manual_seed(0))
    spec = METHODS.get("lora")
    full = _saved_for_backward_bytes(model(), ids)
    default = _saved_for_backward_bytes(spec.apply(model(), spec.config_class()).train(), ids)
    dropped = _saved_for_backward_bytes(spec.apply(model(), spec.config_class(dropout=0.05)).train(), ids)
    assert default < full < dropped

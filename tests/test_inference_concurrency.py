"""One loaded base, several LoRA adapters, many callers at once: each gets what it gets alone."""

import threading

import pytest
import torch

from tunesmith.adapters.multi import load_adapter_set
from tunesmith.errors import ConfigError
from tunesmith.inference.generate import SamplingParams, generate_replies, stream_reply
from tunesmith.inference.load import load_for_inference

CHATS = [[{"role": "user", "content": q}] for q in
         ("hello world, what is your name", "0 + 1 = ?", "who are you?", "the quick brown fox")]
LONG = SamplingParams(max_new_tokens=16)


@pytest.fixture(scope="module")
def loras(tiny_model_dir, tmp_path_factory):
    """Three random LoRA adapters on the tiny llama; c wraps layers that a and b leave alone."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    folder = tmp_path_factory.mktemp("loras")
    targets = {"a": ["q_proj", "v_proj"], "b": ["q_proj", "v_proj"], "c": ["o_proj", "down_proj"]}
    for seed, (name, modules) in enumerate(targets.items()):
        torch.manual_seed(seed)
        base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        model = get_peft_model(base, LoraConfig(r=2, lora_alpha=4, target_modules=modules))
        for n, p in model.named_parameters():
            if "lora_" in n:  # big enough that every adapter changes the replies
                p.data.normal_(0, 0.5)
        model.save_pretrained(folder / name)
    return {name: folder / name for name in targets}


@pytest.fixture
def adapters(loras):
    return load_adapter_set({"a": loras["a"], "b": loras["b"]})


def _alone(path, name) -> list[str]:
    """Replies of a base that holds only this adapter."""
    return load_adapter_set({name: path}).reply(name, CHATS, params=LONG, batch_size=1)


def _in_threads(*jobs) -> list:
    """Run the jobs at the same time (released together) and return their results."""
    start, results, errors = threading.Barrier(len(jobs)), [None] * len(jobs), []

    def run(i, job):
        try:
            start.wait()
            results[i] = job()
        except Exception as err:  # re-raised in the test's thread
            errors.append(err)

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def test_two_threads_on_two_adapters_get_what_each_gets_alone(adapters, loras):
    alone = {name: _alone(loras[name], name) for name in ("a", "b")}
    base = adapters.reply("base", CHATS, params=LONG, batch_size=1)
    assert alone["a"] != alone["b"] and base not in alone.values()
    assert adapters.reply("a", CHATS, params=LONG) == alone["a"]  # one batch == one by one

    def replies(name):  # one call per chat: many forwards to interleave with the other threads'
        return adapters.reply(name, CHATS, params=LONG, batch_size=1)

    def streams(name):
        return [adapters.stream(name, chat, LONG) for chat in CHATS]

    a, b, streamed_b, streamed_base = _in_threads(
        lambda: replies("a"), lambda: replies("b"),
        lambda: ["".join(s) for s in streams("b")], lambda: ["".join(s) for s in streams("base")])
    assert a == alone["a"] and b == alone["b"]
    assert streamed_b == alone["b"] and streamed_base == base
    assert adapters.model.active_adapter == "a"  # never switched


def test_mixed_adapter_batch_equals_per_adapter_calls(adapters):
    names = ["a", "b", "base", "a"]
    mixed = generate_replies(adapters.loaded, CHATS, batch_size=4, params=LONG, adapter_names=names)
    one_each = [adapters.reply(n, [chat], params=LONG)[0] for n, chat in zip(names, CHATS)]
    assert mixed == one_each
    assert len(set(mixed[:3])) == 3  # the rows really took different adapters
    assert adapters.replies(names, CHATS, params=LONG) == mixed
    with pytest.raises(ConfigError, match="unknown adapter 'z'; loaded: a, b"):
        generate_replies(adapters.loaded, CHATS[:1], adapter_names=["z"])


def test_stream_pieces_join_to_the_batch_reply(tiny_model_dir, adapters):
    plain = load_for_inference(str(tiny_model_dir), template="chatml")
    for chat in CHATS:
        pieces = list(stream_reply(plain, chat, LONG))
        assert "".join(pieces) == generate_replies(plain, [chat], params=LONG)[0]
        assert "".join(stream_reply(adapters.loaded, chat, LONG, adapter_name="b")) == \
            adapters.reply("b", [chat], params=LONG)[0]
    full = generate_replies(plain, CHATS, params=LONG)
    longest = max(full, key=len)
    assert len(list(stream_reply(plain, CHATS[full.index(longest)], LONG))) > 1  # pieces, not one string
    stop = longest[len(longest) // 2:len(longest) // 2 + 2]  # a stop string inside the reply
    params = SamplingParams(max_new_tokens=16, stop=(stop,))
    chat = CHATS[full.index(longest)]
    stopped = generate_replies(plain, [chat], params=params)[0]
    assert stopped == longest.split(stop)[0].strip() and len(stopped) < len(longest)
    assert "".join(stream_reply(plain, chat, params)) == stopped


def test_stream_stops_when_cancelled_or_closed(tiny_model_dir):
    plain = load_for_inference(str(tiny_model_dir), template="chatml")
    chat = CHATS[0]
    full = generate_replies(plain, [chat], params=LONG)[0]
    cancel = threading.Event()
    cancel.set()
    cancelled = "".join(stream_reply(plain, chat, LONG, cancel=cancel))
    assert full.startswith(cancelled) and len(cancelled) < len(full)
    threads = threading.active_count()
    pieces = stream_reply(plain, chat, LONG)
    next(pieces)
    assert threading.active_count() == threads + 1  # the generation thread
    pieces.close()  # stops the generation thread and waits for it
    assert threading.active_count() == threads


def test_sampling_with_a_seed_repeats_across_threads(tiny_model_dir):
    plain = load_for_inference(str(tiny_model_dir), template="chatml")
    params = SamplingParams(max_new_tokens=12, temperature=1.5, seed=3)
    first = generate_replies(plain, CHATS, params=params)
    again = _in_threads(*[lambda: generate_replies(plain, CHATS, params=params)] * 2)
    assert again == [first, first]
    others = generate_replies(plain, CHATS, params=SamplingParams(max_new_tokens=12, temperature=1.5, seed=4))
    assert others != first and first != generate_replies(plain, CHATS, params=LONG)


def test_shared_tokenizer_padding_side_unchanged(tiny_model_dir, adapters):
    plain = load_for_inference(str(tiny_model_dir), template="chatml")
    for side in ("left", "right"):
        plain.tokenizer.padding_side = side
        generate_replies(plain, CHATS, 4, batch_size=4)
        "".join(stream_reply(plain, CHATS[0], LONG))
        adapters.loaded.tokenizer.padding_side = side
        adapters.replies(["a", "b", "base", "b"], CHATS, max_new_tokens=4)
        assert plain.tokenizer.padding_side == side == adapters.loaded.tokenizer.padding_side


def test_add_and_remove_adapters_while_another_thread_generates(adapters, loras):
    alone_a, alone_b, alone_c = (_alone(loras[n], n) for n in ("a", "b", "c"))
    busy = threading.Event()

    def keep_replying():
        out = []
        while not busy.is_set() or not out:
            out.append(adapters.reply("a", CHATS, params=LONG, batch_size=1))
        return out

    def change():
        adapters.add("c", loras["c"])
        assert adapters.names == ["a", "b", "c"]
        replies_c = adapters.reply("c", CHATS, params=LONG)
        adapters.remove("b")
        busy.set()
        return replies_c

    seen, replies_c = _in_threads(keep_replying, change)
    assert seen and all(r == alone_a for r in seen)
    assert replies_c == alone_c and alone_c not in (alone_a, alone_b)
    assert adapters.names == ["a", "c"] and "b" not in adapters.model.peft_config
    with pytest.raises(ConfigError, match="unknown adapter 'b'"):
        adapters.reply("b", CHATS)
    with pytest.raises(ConfigError, match="already loaded"):
        adapters.add("c", loras["c"])


def test_remove_waits_for_the_requests_on_that_adapter(adapters, loras):
    alone_b = _alone(loras["b"], "b")
    stream = adapters.stream("b", CHATS[0], LONG)
    first = next(stream)  # a request on b is in flight
    remover = threading.Thread(target=adapters.remove, args=("b",))
    remover.start()
    remover.join(timeout=0.5)
    assert remover.is_alive() and adapters.names == ["a"]  # new requests on b are refused meanwhile
    with pytest.raises(ConfigError, match="unknown adapter 'b'"):
        adapters.reply("b", CHATS[:1])
    assert first + "".join(stream) == alone_b[0]
    remover.join(timeout=10)
    assert not remover.is_alive() and "b" not in adapters.model.peft_config


def test_prompt_tuning_adapter_generates_in_turns(tiny_model_dir):
    """Prompt-learning adapters need PeftModel.generate, which swaps attributes of the shared model
    per call: concurrent calls take turns and still each get their own reply."""
    from peft import PromptTuningConfig, get_peft_model

    plain = load_for_inference(str(tiny_model_dir), template="chatml")
    base_replies = generate_replies(plain, CHATS, params=LONG)
    torch.manual_seed(0)
    model = get_peft_model(plain.model, PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4)).eval()
    tuned = type(plain)(model, plain.tokenizer, plain.template, plain.config)
    alone, one_by_one = (generate_replies(tuned, CHATS, params=LONG, batch_size=n) for n in (4, 1))
    assert alone != base_replies
    together = _in_threads(lambda: generate_replies(tuned, CHATS, params=LONG, batch_size=4),
                           lambda: ["".join(stream_reply(tuned, chat, LONG)) for chat in CHATS])
    assert together == [alone, one_by_one]

"""The serving engine's step loop (serving/batching.py): rows that join, leave and grow the cache
in place decode exactly as each prompt does alone."""

import torch

from tiny import tiny_llama
from tunesmith.serving import batching


def _alone(model, prompt: list[int], steps: int) -> list[torch.Tensor]:
    """Each step's next-token logits for one prompt, through transformers' own DynamicCache."""
    from transformers import DynamicCache

    out, cache, ids = [], DynamicCache(), torch.tensor([prompt])
    with torch.inference_mode():
        for _ in range(steps):
            result = model(input_ids=ids, past_key_values=cache, use_cache=True)
            logits, cache = result.logits[0, -1], result.past_key_values
            out.append(logits)
            ids = logits.argmax().view(1, 1)
    return out


def test_rows_joining_and_leaving_decode_as_alone(monkeypatch):
    model = tiny_llama(64).eval()
    forward = batching.Forward(model)
    prompts = [[5, 6, 7], list(range(3, 40)), [9] * 12]  # lengths 3, 37, 12: left padding in both directions
    monkeypatch.setattr(batching._growing_layer(), "SPARE", 4)  # several re-growths within a few steps
    expected = [_alone(model, p, 10) for p in prompts]
    batch, got = None, [[] for _ in prompts]
    for row, prompt in enumerate(prompts[:2]):
        logits, cache, mask = batching.prefill(forward, [prompt], None, pad_id=0)
        got[row].append(logits[0])
        batch = batching.join(batch, cache, mask, logits.argmax(-1, keepdim=True))
    rows = [0, 1]
    for step in range(1, 10):
        if step == 3:  # a third row arrives mid-way
            logits, cache, mask = batching.prefill(forward, [prompts[2]], None, pad_id=0)
            got[2].append(logits[0])
            batch = batching.join(batch, cache, mask, logits.argmax(-1, keepdim=True))
            rows.append(2)
        if step == 6:  # the first row leaves
            batch, rows = batching.keep(batch, [1, 2]), rows[1:]
        logits = batching.step(forward, batch, None)
        batch.last = logits.argmax(-1, keepdim=True)
        for i, row in enumerate(rows):
            got[row].append(logits[i])
    for row in range(3):
        for step, logits in enumerate(got[row]):
            torch.testing.assert_close(logits, expected[row][step], atol=1e-4, rtol=1e-4,
                                       msg=f"row {row}, step {step}")
    assert type(batch.cache.layers[0]).__name__ == "GrowingLayer"
    assert batch.cache.layers[0].keys.data_ptr() == batch.cache.layers[0]._key_buffer.data_ptr()  # in place


def test_the_growing_cache_takes_more_new_positions_than_its_spare_room(monkeypatch):
    monkeypatch.setattr(batching._growing_layer(), "SPARE", 2)
    cache = batching.growing_cache()
    first, more = torch.randn(1, 2, 3, 4), torch.randn(1, 2, 5, 4)
    cache.update(first, first, 0)
    cache.update(first[..., :1, :], first[..., :1, :], 0)  # now in a buffer with 2 spare positions
    keys, values = cache.update(more, more, 0)
    torch.testing.assert_close(keys, torch.cat([first, first[..., :1, :], more], dim=-2))

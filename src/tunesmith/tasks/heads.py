"""Task heads are new weights: whatever the method froze, they must train."""

from __future__ import annotations

HEAD_NAMES = ("classifier", "score", "qa_outputs")  # transformers' names for the added task heads


def train_task_head(model) -> int:
    """Unfreeze the task head of a plain (non-PEFT) model, e.g. after freeze tuning; returns how
    many tensors were switched on. PEFT models keep the head trainable via modules_to_save."""
    if hasattr(model, "peft_config"):
        return 0
    switched = 0
    for name, param in model.named_parameters():
        if name.split(".")[0] in HEAD_NAMES and not param.requires_grad:
            param.requires_grad_(True)
            switched += 1
    return switched

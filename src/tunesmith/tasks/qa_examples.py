"""Extractive QA rows -> flat examples {id, question, context, answers, starts}, with their origin.

Accepted: a SQuAD json file (v1.1, or v2.0 with `is_impossible` questions) whose `data` holds
articles -> paragraphs -> qas; and flat rows (jsonl/csv) with question, context and answers as
`{"text": [...], "answer_start": [...]}` (Hugging Face), `[{"text", "answer_start"}]` (SQuAD), or
a single answer text. An answer that is not in its context is a bad row; no answers means
unanswerable.
"""

from __future__ import annotations

from tunesmith.data.records import LayoutError, RowError


def expand_rows(record: dict) -> list[tuple[str, dict]]:
    """(origin, flat row) for each question of a record; a SQuAD file record holds many."""
    where = record.get("_origin", "?")
    if not isinstance(record.get("data"), list):
        return [(where, record)]
    out = []
    for a, article in enumerate(record["data"]):
        for p, paragraph in enumerate(article.get("paragraphs", [])):
            for q, qa in enumerate(paragraph.get("qas", [])):
                row = {**qa, "context": paragraph.get("context")}
                out.append((f"{where} data[{a}].paragraphs[{p}].qas[{q}] (id {qa.get('id', '?')})", row))
    return out


def _answers(value) -> list[tuple[str, int | None]]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [(value, None)]
    if isinstance(value, dict):
        texts, starts = value.get("text", []), value.get("answer_start", [])
        texts = [texts] if isinstance(texts, str) else texts
        starts = [starts] if isinstance(starts, int) else starts
        return [(t, starts[i] if i < len(starts) else None) for i, t in enumerate(texts)]
    if isinstance(value, list):
        return [(a["text"], a.get("answer_start")) if isinstance(a, dict) else (str(a), None) for a in value]
    raise RowError(f"answers must be text, a list, or {{text, answer_start}}; got {type(value).__name__}")


def qa_example(row: dict, cfg, need_answers: bool = True) -> dict:
    """One question; RowError names what is wrong (missing field, answer not in context)."""
    question, context = row.get(cfg.question_column), row.get(cfg.context_column)
    for key, value in ((cfg.question_column, question), (cfg.context_column, context)):
        if not isinstance(value, str) or not value.strip():
            which = "question" if key == cfg.question_column else "context"
            raise LayoutError(f"field {key!r} is missing or empty (set task.{which}_column)")
    raw = row.get(cfg.answers_column, row.get("answer"))
    if raw is None and row.get("is_impossible") is None and need_answers:
        raise RowError(f"field {cfg.answers_column!r} is missing (use [] or is_impossible: true for no answer)")
    answers = [] if row.get("is_impossible") else _answers(raw)
    texts, starts = [], []
    for text, start in answers:
        if start is None or context[start:start + len(text)] != text:
            found = context.find(text)
            if found < 0:
                raise RowError(f"answer {text[:60]!r} is not in the context")
            start = found
        texts.append(text)
        starts.append(start)
    return {"id": str(row.get("id", "")), "question": question.strip(), "context": context,
            "answers": texts, "starts": starts, "has_references": raw is not None or bool(row.get("is_impossible"))}

"""Suite 2 quality: score the model's outputs on the sampled items, in the same run.

GSM8K (text generation): exact match of the final number. BANKING77 (text classification):
accuracy, only when the model's label names are exactly the 77 intents. The label's ``quality``
block keeps one 0/1 outcome per sampled item (in sample order) and the sha256 of the raw outputs,
so anyone holding the outputs can check the figure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from schemas import suites

GSM8K_METRIC = "gsm8k-exact-match"
ACCURACY_METRIC = "accuracy"
_MARKERS = ("####", "the answer is")
_NUMBER = re.compile(r"(?:(?<!\d)-)?(?:\$\s?)?\d[\d,]*(?:\.\d+)?\.?")
_REASON_MAX = 300


def normalise_number(text: str) -> Decimal | None:
    """A number as written in an answer: commas, ``$`` and a trailing ``.`` removed."""
    cleaned = text.strip().replace(",", "").replace("$", "").replace(" ", "").rstrip(".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def extract_answer(output: str) -> str | None:
    """The final number of a model's output: the first number after the last ``####``, else
    after the last "The answer is" (any case), else the last number of the whole output."""
    lowered = output.lower()
    for marker in _MARKERS:
        at = lowered.rfind(marker)
        if at >= 0:
            found = _NUMBER.search(output, at + len(marker))
            if found:
                return found.group(0)
    numbers = _NUMBER.findall(output)
    return numbers[-1] if numbers else None


def gsm8k_outcome(output: str, reference: str) -> int:
    """1 when the output's final number equals the reference's number, else 0."""
    expected = normalise_number(reference)
    answer = extract_answer(output)
    if expected is None or answer is None:
        return 0
    got = normalise_number(answer)
    return int(got is not None and got == expected)


def banking77_unavailable_reason(
    id2label: Mapping[Any, Any] | None, categories: Sequence[str]
) -> str | None:
    """None when the model's label names are exactly BANKING77's intents, else why not."""
    names = [str(v) for _, v in sorted((id2label or {}).items(), key=lambda kv: int(kv[0]))]
    if len(names) == len(categories) and set(names) == set(categories):
        return None
    shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    reason = (
        f"the model's {len(names)} labels ({shown}) are not BANKING77's {len(categories)} intents"
    )
    if len(reason) > _REASON_MAX:
        reason = f"the model's {len(names)} labels are not BANKING77's {len(categories)} intents"
    return reason


def measured(metric: str, outcomes: Sequence[int], outputs: Iterable[str]) -> dict[str, Any]:
    """The label's ``quality.measured`` block (value and items follow from the outcomes)."""
    if not outcomes:
        raise ValueError("no outcomes to score")
    return {
        "metric": metric,
        "value": sum(outcomes) / len(outcomes),
        "items": len(outcomes),
        "outcomes": [int(o) for o in outcomes],
        "outputs_sha256": suites.outputs_digest(outputs),
    }


def score_generation(outputs: Sequence[str], references: Sequence[str]) -> dict[str, Any]:
    """GSM8K exact match over the sampled items (outputs: the decoded generated text)."""
    outcomes = [gsm8k_outcome(o, r) for o, r in zip(outputs, references, strict=True)]
    return {"measured": measured(GSM8K_METRIC, outcomes, outputs)}


def score_classification(predicted: Sequence[str], intents: Sequence[str]) -> dict[str, Any]:
    """Accuracy over the sampled items (predicted: the label names of the argmax)."""
    outcomes = [int(p == t) for p, t in zip(predicted, intents, strict=True)]
    return {"measured": measured(ACCURACY_METRIC, outcomes, predicted)}


def unavailable(reason: str) -> dict[str, Any]:
    return {"unavailable_reason": reason[:_REASON_MAX]}

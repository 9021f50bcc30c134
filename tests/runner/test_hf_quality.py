"""Suite 2 quality and data: GSM8K answer extraction on real lines, BANKING77 label checks, the
quality block, the shipped files and their fixed sample, generated images."""

from __future__ import annotations

import hashlib
import json
from importlib import resources

import pytest

from bench_runner import quality
from bench_runner.workloads import textdata
from bench_runner.workloads.base import WorkloadError
from schemas import suites

GSM8K_LINES = (
    resources.files("bench_runner")
    .joinpath("data/suite-v2/gsm8k/test.jsonl")
    .read_text(encoding="utf-8")
    .splitlines()
)
CATEGORIES = json.loads(
    resources.files("bench_runner").joinpath("data/suite-v2/banking77/categories.json").read_text()
)


def test_every_real_gsm8k_solution_scores_as_correct() -> None:
    records = [json.loads(line) for line in GSM8K_LINES]
    references = [textdata.final_number_of_reference(r["answer"]) for r in records]
    assert references[0] == "18"  # Janet's ducks
    assert references[146] == "2,125"  # a reference written with a comma
    outcomes = [
        quality.gsm8k_outcome(r["answer"], ref) for r, ref in zip(records, references, strict=True)
    ]
    assert sum(outcomes) == len(records) == 1319
    # the solution without its '####' line ends on other numbers: not all of them match
    stripped = [r["answer"].rpartition("####")[0] for r in records]
    partly = [quality.gsm8k_outcome(s, ref) for s, ref in zip(stripped, references, strict=True)]
    assert 0 < sum(partly) < len(records)


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        # first line of GSM8K's test set, as a model might answer it
        ("Janet has 16 - 3 - 4 = 9 eggs left. 9 * 2 = $18.\n#### 18", "18"),
        ("She makes 9 * $2 = $18 a day. The answer is $18.", "$18."),
        ("The answer is: 1,450,000. (It took 3 steps.)", "1,450,000."),
        ("16 - 3 - 4 = 9, so she earns 9 * 2 = 18", "18"),
        ("#### 5\nThe answer is 7", "5"),  # '####' first
        ("the answer is 12 apples", "12"),
        ("It rose from 3-4 degrees", "4"),  # a range's hyphen is no minus sign
        ("He lost -5 dollars", "-5"),
        ("no number here", None),
    ],
)
def test_answer_extraction(output: str, expected: str | None) -> None:
    assert quality.extract_answer(output) == expected


@pytest.mark.parametrize(
    ("output", "reference", "outcome"),
    [
        ("The answer is $1,450,000.", "1,450,000", 1),
        ("The answer is 18.00", "18", 1),
        ("#### 2125", "2,125", 1),
        ("The answer is 17. Then 18", "18", 0),
        ("I do not know", "18", 0),
        ("The answer is -3", "3", 0),
    ],
)
def test_exact_match_compares_numbers(output: str, reference: str, outcome: int) -> None:
    assert quality.gsm8k_outcome(output, reference) == outcome


def test_quality_block_keeps_outcomes_in_order_and_the_outputs_digest() -> None:
    outputs = ["The answer is 18", "#### 4", "no idea"]
    block = quality.score_generation(outputs, ["18", "3", "7"])
    assert block == {
        "measured": {
            "metric": "gsm8k-exact-match",
            "value": 1 / 3,
            "items": 3,
            "outcomes": [1, 0, 0],
            "outputs_sha256": suites.outputs_digest(outputs),
        }
    }
    text = json.dumps(outputs, ensure_ascii=False, separators=(",", ":"))
    assert block["measured"]["outputs_sha256"] == hashlib.sha256(text.encode()).hexdigest()
    predicted = ["card_arrival", "card_linking"]
    accuracy = quality.score_classification(predicted, ["card_arrival", "exchange_rate"])
    assert accuracy["measured"]["metric"] == "accuracy"
    assert accuracy["measured"]["outcomes"] == [1, 0]


def test_banking77_labels_must_be_exactly_the_77_intents() -> None:
    assert len(CATEGORIES) == 77
    shuffled = dict(enumerate(reversed(CATEGORIES)))
    assert quality.banking77_unavailable_reason(shuffled, CATEGORIES) is None
    generic = {i: f"LABEL_{i}" for i in range(4)}
    assert quality.banking77_unavailable_reason(generic, CATEGORIES) == (
        "the model's 4 labels (LABEL_0, LABEL_1, LABEL_2, ...) are not BANKING77's 77 intents"
    )
    one_short = dict(enumerate(CATEGORIES[:-1])) | {76: "other"}
    assert "77 labels" in (quality.banking77_unavailable_reason(one_short, CATEGORIES) or "")
    assert quality.banking77_unavailable_reason(None, CATEGORIES) is not None


def test_text_sample_is_the_methodology_draw_of_the_checked_file() -> None:
    sample = textdata.load_text_sample("text-generation", 16)
    assert sample.dataset_id == "gsm8k-test"
    assert sample.dataset_sha256 == suites.task_spec("2", "text-generation")["data"]["sha256"]
    assert [i.index for i in sample.items] == suites.sample_indices("gsm8k-test", 1319, 16)
    first = json.loads(GSM8K_LINES[sample.items[0].index])
    assert sample.items[0].text == first["question"]
    assert sample.items[0].reference == first["answer"].rpartition("####")[2].strip()
    full = textdata.load_text_sample("text-classification")
    assert len(full.items) == 1000
    assert full.categories == CATEGORIES
    assert {i.reference for i in full.items} <= set(CATEGORIES)
    with pytest.raises(WorkloadError, match="between 1 and 1319"):
        textdata.load_text_sample("text-generation", 2000)


def test_a_changed_data_file_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    real = textdata._read
    monkeypatch.setattr(textdata, "_read", lambda rel: real(rel) + b"\n")
    with pytest.raises(WorkloadError, match="the shipped data was changed"):
        textdata.load_text_sample("text-generation")


def test_generated_images_are_shake256_of_the_seed() -> None:
    images = textdata.generated_images(4, 3)
    stream = hashlib.shake_256(b"carbonlabel-suite-v2:generated-images-v2").digest(256 * 49)
    per_image = 3 * 4 * 4
    assert images.indices == suites.sample_indices("generated-images-v2", 256, 3)
    expected = b"".join(stream[i * per_image : (i + 1) * per_image] for i in images.indices)
    assert images.pixels == expected
    assert images.dataset_sha256 == hashlib.sha256(stream[: 256 * per_image]).hexdigest()
    assert images.label_bytes == bytes(stream[256 * per_image + i] for i in images.indices)

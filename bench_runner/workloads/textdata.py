"""Suite 2 data: the shipped GSM8K and BANKING77 test sets, and generated images.

The text files ship inside the package (``bench_runner/data/suite-v2``) and are read through
``importlib.resources``; each file's sha256 must equal the methodology's before anything is
measured on it. The sample is the methodology's fixed draw (``schemas.suites.sample_indices``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from bench_runner.workloads.base import WorkloadError
from schemas import suites

SUITE = suites.SUITE_2
DATA_PACKAGE = "bench_runner"
DATA_FOLDER = "data/suite-v2"


@dataclass(frozen=True)
class TextItem:
    """One sampled item: its index in the data file, the input text, and the reference.

    GSM8K: ``text`` is the question, ``reference`` the final number after ``####`` in the answer
    and ``answer`` the whole reference solution (the training target). BANKING77: ``text`` is the
    customer query and ``reference`` its intent."""

    index: int
    text: str
    reference: str
    answer: str = ""


@dataclass(frozen=True)
class TextSample:
    dataset_id: str
    dataset_sha256: str
    n_items: int
    items: list[TextItem]
    #: BANKING77's 77 intents (categories.json, in file order); empty for GSM8K
    categories: list[str]


def _read(relative: str) -> bytes:
    path = resources.files(DATA_PACKAGE).joinpath(f"{DATA_FOLDER}/{relative}")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise WorkloadError(
            f"the suite's data file {DATA_FOLDER}/{relative} is missing from the installed "
            f"package ({exc.strerror}); reinstall carbonlabel"
        ) from None


def _checked(data: dict[str, Any]) -> bytes:
    raw = _read(str(data["file"]))
    digest = hashlib.sha256(raw).hexdigest()
    if digest != data["sha256"]:
        raise WorkloadError(
            f"{data['file']} has sha256 {digest}, the methodology says {data['sha256']}: "
            "the shipped data was changed; reinstall carbonlabel"
        )
    return raw


def final_number_of_reference(answer: str) -> str:
    """The GSM8K reference answer: the text after the last ``####``."""
    _head, sep, tail = answer.rpartition("####")
    if not sep:
        raise WorkloadError("a GSM8K answer has no '####' final answer")
    return tail.strip()


def load_text_sample(task: str, size: int | None = None) -> TextSample:
    """The suite's fixed sample for a text task (``size``: the methodology's unless given)."""
    spec = suites.task_spec(SUITE, task)
    data = spec["data"]
    raw = _checked(data)
    text = raw.decode("utf-8")
    categories: list[str] = []
    if task == "text-generation":
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
        rows = [
            (str(r["question"]), final_number_of_reference(str(r["answer"])), str(r["answer"]))
            for r in records
        ]
    elif task == "text-classification":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        rows = [(str(r["text"]), str(r["category"]), "") for r in reader]
        categories = [str(c) for c in json.loads(_read(str(data["labels_file"])))]
    else:
        raise WorkloadError(f"{task} has no text data")
    if len(rows) != data["items"]:
        raise WorkloadError(f"{data['file']} has {len(rows)} items, expected {data['items']}")
    n = size if size is not None else int(spec["sample_size"])
    if not 0 < n <= len(rows):
        raise WorkloadError(f"--samples must be between 1 and {len(rows)} for {task}, got {n}")
    indices = suites.sample_indices(data["dataset_id"], len(rows), n)
    items = [TextItem(i, *rows[i]) for i in indices]
    return TextSample(data["dataset_id"], data["sha256"], len(rows), items, categories)


@dataclass(frozen=True)
class ImageSample:
    dataset_id: str
    #: sha256 of the generated pixel bytes (all of the generator's items)
    dataset_sha256: str
    n_items: int
    image_size_px: int
    indices: list[int]
    #: the sampled images, ``size`` x 3 x image_size x image_size bytes in item order
    pixels: bytes
    #: one byte per sampled item, from the stream after the pixels: training labels
    label_bytes: bytes


def generated_images(image_size_px: int, size: int | None = None) -> ImageSample:
    """SHAKE-256 of ``carbonlabel-suite-v2:generated-images-v2``: the first
    ``items x 3 x image_size^2`` bytes are the images (RGB, bytes / 255 as pixel values); the next
    ``items`` bytes give the training labels (byte modulo the model's number of labels)."""
    spec = suites.task_spec(SUITE, "image-classification")
    dataset_id = str(spec["data"]["dataset_id"])
    n_items = int(spec["data"]["items"])
    n = size if size is not None else int(spec["sample_size"])
    if not 0 < n <= n_items:
        raise WorkloadError(
            f"--samples must be between 1 and {n_items} for image-classification, got {n}"
        )
    per_image = 3 * image_size_px * image_size_px
    stream = hashlib.shake_256(f"carbonlabel-suite-v2:{dataset_id}".encode()).digest(
        n_items * per_image + n_items
    )
    pixel_bytes = stream[: n_items * per_image]
    indices = suites.sample_indices(dataset_id, n_items, n)
    pixels = b"".join(pixel_bytes[i * per_image : (i + 1) * per_image] for i in indices)
    labels = bytes(stream[n_items * per_image + i] for i in indices)
    return ImageSample(
        dataset_id,
        hashlib.sha256(pixel_bytes).hexdigest(),
        n_items,
        image_size_px,
        indices,
        pixels,
        labels,
    )

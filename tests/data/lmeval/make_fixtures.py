"""Regenerate the lm-evaluation-harness fixtures in this folder (not part of the test run).

Runs lm-evaluation-harness's own evaluator, aggregation and ``EvaluationTracker`` on the suite's
shipped data with a scripted stand-in model, so the files have exactly the layout the harness
writes; the figures are illustrative (the stand-in's answers are chosen by a hash, not by a model).

    python3 -m venv /tmp/lmeval-venv && /tmp/lmeval-venv/bin/pip install lm-eval==0.4.13
    cd <repo root> && HF_DATASETS_OFFLINE=1 /tmp/lmeval-venv/bin/python \
        tests/data/lmeval/make_fixtures.py OUT_DIR

The harness names each file ``results_<timestamp>.json``; copy them here under the names the tests
use (see README.md). lm-eval is not a dependency of this project.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

DATA = Path("bench_runner/data/suite-v2")

GSM8K_YAML = """\
tag:
  - math_word_problems
task: gsm8k
dataset_path: json
dataset_kwargs:
  data_files:
    train: {data}/gsm8k/test.jsonl
    test: {data}/gsm8k/test.jsonl
output_type: generate_until
training_split: train
fewshot_split: train
test_split: test
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_target: "{{{{answer}}}}"
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
    ignore_case: true
    ignore_punctuation: false
    regexes_to_ignore:
      - ","
      - "\\\\$"
      - "(?s).*#### "
      - "\\\\.$"
generation_kwargs:
  until:
    - "Question:"
    - "</s>"
    - "<|im_end|>"
  do_sample: false
  temperature: 0.0
repeats: 1
num_fewshot: 5
filter_list:
  - name: "strict-match"
    filter:
      - function: "regex"
        regex_pattern: "#### (\\\\-?[0-9\\\\.\\\\,]+)"
      - function: "take_first"
  - name: "flexible-extract"
    filter:
      - function: "regex"
        group_select: -1
        regex_pattern: "(-?[$0-9.,]{{2,}})|(-?[0-9]+)"
      - function: "take_first"
metadata:
  version: 3.0
"""

BANKING_YAML = """\
task: {name}
task_alias: {alias}
dataset_path: csv
dataset_kwargs:
  data_files:
    test: {data}/banking77/test.csv
test_split: test
output_type: multiple_choice
process_docs: !function utils.process_docs
doc_to_text: "{prompt}"
doc_to_choice: !function utils.doc_to_choice
doc_to_target: label
num_fewshot: 0
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""

GROUP_YAML = """\
group: banking77_intents
group_alias: banking77 intents
task:
  - banking77_intents_query
  - banking77_intents_question
aggregate_metric_list:
  - metric: acc
    aggregation: mean
    weight_by_size: true
  - metric: acc_norm
    aggregation: mean
    weight_by_size: true
metadata:
  version: 1.0
"""

UTILS_PY = """\
import json
from pathlib import Path

CATEGORIES = json.loads(Path("{data}/banking77/categories.json").read_text())


def process_docs(dataset):
    return dataset.map(lambda doc: {{"label": CATEGORIES.index(doc["category"])}})


def doc_to_choice(doc):
    return [c.replace("_", " ") for c in CATEGORIES]
"""


def _bucket(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) % 10


def _make_lm() -> Any:
    from lm_eval.api.model import LM

    class ScriptedLM(LM):  # type: ignore[misc]
        """Answers by a hash of the item: a stand-in, not a model."""

        def generate_until(self, requests: list[Any]) -> list[str]:
            out = []
            for req in requests:
                gold = req.doc["answer"].split("####")[-1].strip()
                b = _bucket(req.doc["question"])
                if b < 3:
                    out.append(f" She has {gold} left.\n#### {gold}")
                elif b < 5:
                    out.append(f" The answer is {gold}.")
                elif b == 5:
                    out.append(f" That makes {int(gold.replace(',', '')) + 1}.\n#### 7")
                else:
                    out.append(" I do not know.")
            return out

        def loglikelihood(self, requests: list[Any]) -> list[tuple[float, bool]]:
            out = []
            for req in requests:
                ctx, cont = req.args
                gold = req.doc["category"].replace("_", " ")
                ll = -2.0 - (_bucket(ctx + cont) + len(cont) % 7) / 2.0
                if cont.strip() == gold and _bucket(ctx) < 6:
                    ll = -1.0
                out.append((ll, False))
            return out

        def loglikelihood_rolling(self, requests: list[Any]) -> list[float]:
            raise NotImplementedError

    return ScriptedLM()


def _run(tasks: list[str], limit: int | None, include: Path, out: Path, name: str) -> Path:
    from lm_eval import simple_evaluate
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.tasks import TaskManager

    tracker = EvaluationTracker(output_path=str(out / name))
    tracker.general_config_tracker.log_experiment_args(
        model_source="hf",
        model_args="pretrained=example-org/example-1b,dtype=bfloat16",
        system_instruction=None,
        chat_template=None,
        fewshot_as_multiturn=False,
    )
    results = simple_evaluate(
        model=_make_lm(),
        model_args="pretrained=example-org/example-1b,dtype=bfloat16",
        tasks=tasks,
        limit=limit,
        task_manager=TaskManager(include_path=str(include), include_defaults=False),
        evaluation_tracker=tracker,
    )
    assert results is not None
    results.pop("samples", None)
    tracker.save_results_aggregated(results=results, samples=None)
    return out / name


def write_v040_layout(src: Path, dst: Path) -> None:
    """Restate the gsm8k run in the layout v0.4.0's CLI wrote to ``results.json``.

    v0.4.0 (lm_eval/evaluator.py, lm_eval/__main__.py at tag v0.4.0): only ``results``,
    ``configs``, ``versions`` ("Yaml" for YAML tasks), ``n-shot``, ``config`` and ``git_hash``; the
    one gsm8k filter was "get-answer" (the regex of today's "strict-match"); ``alias`` comes last;
    ``json.dumps(indent=2)`` with ASCII escapes.
    """
    new = json.loads(src.read_text())
    fig = new["results"]["gsm8k"]
    cfg = new["configs"]["gsm8k"]
    config = {
        "task": "gsm8k",
        "group": ["math_word_problems"],
        "dataset_path": "gsm8k",
        "dataset_name": "main",
        "training_split": "train",
        "test_split": "test",
        "fewshot_split": "train",
        "doc_to_text": cfg["doc_to_text"],
        "doc_to_target": cfg["doc_to_target"],
        "description": "",
        "target_delimiter": " ",
        "fewshot_delimiter": "\n\n",
        "num_fewshot": 5,
        "metric_list": [dict(cfg["metric_list"][0], regexes_to_ignore=[",", "\\$", "(?s).*#### "])],
        "output_type": "generate_until",
        "generation_kwargs": {
            "until": ["\n\n", "Question:"],
            "do_sample": False,
            "temperature": 0.0,
        },
        "repeats": 1,
        "filter_list": [dict(cfg["filter_list"][0], name="get-answer")],
        "should_decontaminate": False,
        "metadata": [{"version": 1.0}],
    }
    old = {
        "results": {
            "gsm8k": {
                "exact_match,get-answer": fig["exact_match,strict-match"],
                "exact_match_stderr,get-answer": fig["exact_match_stderr,strict-match"],
                "alias": "gsm8k",
            }
        },
        "configs": {"gsm8k": config},
        "versions": {"gsm8k": "Yaml"},
        "n-shot": {"gsm8k": 5},
        "config": {
            "model": "hf",
            "model_args": "pretrained=example-org/example-1b,dtype=bfloat16",
            "batch_size": "8",
            "batch_sizes": [],
            "device": "cuda:0",
            "use_cache": None,
            "limit": None,
            "bootstrap_iters": 100000,
            "gen_kwargs": None,
        },
        "git_hash": "5d6add0",
    }
    dst.write_text(json.dumps(old, indent=2))


def main() -> None:
    out = Path(sys.argv[1]).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        inc = Path(tmp)
        (inc / "gsm8k.yaml").write_text(GSM8K_YAML.format(data=DATA))
        (inc / "utils.py").write_text(UTILS_PY.format(data=DATA))
        for name, alias, prompt in [
            ("banking77_intents_query", "query prompt", "Query: {{text}}\\nIntent:"),
            ("banking77_intents_question", "question prompt", "Question: {{text}}\\nTopic:"),
        ]:
            (inc / f"{name}.yaml").write_text(
                BANKING_YAML.format(name=name, alias=alias, prompt=prompt, data=DATA)
            )
        (inc / "banking77_intents.yaml").write_text(GROUP_YAML)
        sys.path.insert(0, str(inc))
        print(_run(["gsm8k"], None, inc, out, "gsm8k"))
        print(_run(["gsm8k", "banking77_intents"], 200, inc, out, "multi"))
    (gsm8k_file,) = (out / "gsm8k").rglob("results_*.json")
    write_v040_layout(gsm8k_file, out / "results.json")
    for f in sorted(out.rglob("results*.json")):
        text = f.read_text()
        print(f, len(text), bool(re.search(r"0x[0-9a-f]{6,}", text)))
        json.loads(text)


if __name__ == "__main__":
    main()

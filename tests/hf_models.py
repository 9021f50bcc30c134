"""Tiny Hugging Face models built locally for the suite-2 tests (nothing is downloaded).

A byte-level BPE tokenizer is trained here on the shipped GSM8K and BANKING77 text; the models are
built from configs with fixed seeds and saved with ``save_pretrained`` next to the tokenizer, as a
real model directory would be.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

EOS, PAD, UNK = "<eos>", "<pad>", "<unk>"
CHAT_TEMPLATE = (
    "{% for m in messages %}<|user|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def _data(relative: str) -> str:
    path = resources.files("bench_runner").joinpath(f"data/suite-v2/{relative}")
    return path.read_text(encoding="utf-8")


def categories() -> list[str]:
    return [str(c) for c in json.loads(_data("banking77/categories.json"))]


def train_tokenizer() -> Any:
    """A 320-token byte-level BPE trained on the GSM8K questions and BANKING77 queries, with
    ``<eos>`` (id 0), ``<pad>`` (1) and ``<unk>`` (2)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    questions = [json.loads(line)["question"] for line in _data("gsm8k/test.jsonl").splitlines()]
    queries = [row["text"] for row in csv.DictReader(io.StringIO(_data("banking77/test.csv")))]
    tokenizer = Tokenizer(models.BPE(unk_token=UNK))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=[EOS, PAD, UNK],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(questions + queries, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, eos_token=EOS, pad_token=PAD, unk_token=UNK
    )


@dataclass(frozen=True)
class TinyModels:
    gen: Path  # GPT-2, 2 layers, random weights, plain prompt
    gen_eos: Path  # GPT-2 that stops by position (see eos_by_position), chat template
    cls77: Path  # BERT whose id2label are BANKING77's 77 intents
    cls4: Path  # BERT with 4 generic labels (LABEL_0..3)
    vit: Path  # ViT for 32 x 32 images, 10 labels


def _gpt2(tokenizer: Any, layers: int, width: int) -> Any:
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=1024,  # the longest GSM8K prompt (this tokenizer) + the 256-token cap
        n_embd=width,
        n_layer=layers,
        n_head=2,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=layers > 1,
    )
    return GPT2LMHeadModel(config)


def eos_by_position(model: Any, eos_id: int, other_id: int, stop_at: int) -> None:
    """Make a 1-layer, untied GPT-2 a clock: it predicts ``other_id`` from positions before
    ``stop_at`` and EOS from there on, whatever the tokens. Positions follow the attention mask
    under left padding, so a prompt of L tokens generates ``max(0, stop_at - L + 1)`` tokens
    and then EOS."""
    import torch

    with torch.no_grad():
        for block in model.transformer.h:  # blocks add nothing: the residual stream passes
            for linear in (block.attn.c_proj, block.mlp.c_proj):
                linear.weight.zero_()
                linear.bias.zero_()
        model.transformer.wte.weight.zero_()
        wpe = model.transformer.wpe.weight
        wpe.zero_()
        wpe[:stop_at, 0] = -1.0
        wpe[stop_at:, 0] = 1.0
        model.lm_head.weight.zero_()
        model.lm_head.weight[eos_id, 0] = 1.0
        model.lm_head.weight[other_id, 0] = -1.0


def _bert(tokenizer: Any, labels: list[str]) -> Any:
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=160,
        pad_token_id=tokenizer.pad_token_id,
        id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)},
    )
    return BertForSequenceClassification(config)


def _vit() -> Any:
    from transformers import ViTConfig, ViTForImageClassification

    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=10,
    )
    return ViTForImageClassification(config)


def build_tiny_models(root: Path) -> TinyModels:
    import torch

    tokenizer = train_tokenizer()
    torch.manual_seed(0)
    models = TinyModels(root / "gen", root / "gen-eos", root / "cls77", root / "cls4", root / "vit")
    _gpt2(tokenizer, layers=2, width=32).save_pretrained(models.gen)
    tokenizer.save_pretrained(models.gen)
    _gpt2(tokenizer, layers=1, width=16).save_pretrained(models.gen_eos)
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(models.gen_eos)
    tokenizer.chat_template = None
    _bert(tokenizer, categories()).save_pretrained(models.cls77)
    tokenizer.save_pretrained(models.cls77)
    _bert(tokenizer, [f"LABEL_{i}" for i in range(4)]).save_pretrained(models.cls4)
    tokenizer.save_pretrained(models.cls4)
    _vit().save_pretrained(models.vit)
    return models


def make_hub_cache(hf_home: Path, repo_id: str, model_dir: Path) -> str:
    """Lay ``model_dir`` out as the Hub cache does under ``hf_home``: blobs named by their
    sha256, ``snapshots/<commit>/`` of symbolic links to them, and ``refs/main``. Returns the
    commit."""
    repo = hf_home / "hub" / f"models--{repo_id.replace('/', '--')}"
    commit = hashlib.sha1(repo_id.encode()).hexdigest()
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    for file in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        blob = repo / "blobs" / hashlib.sha256(file.read_bytes()).hexdigest()
        shutil.copyfile(file, blob)
        link = snapshot / file.relative_to(model_dir)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(Path("../" * len(link.relative_to(repo).parts[:-1])) / "blobs" / blob.name)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return commit

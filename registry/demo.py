"""Demo data: a few vendors, models and signed labels, put through the real ingest path.

Suite 1 labels (``DEMO_CATALOGUE``) and suite 2 labels (``DEMO_SUITE_2``: Hugging Face models
with a measured quality score, text generation in all three model-size classes, so that the
quality column, the per-token figures and the compare page's energy-against-quality chart have
something to show; ``DEMO_SERVING``: chat-serving labels with three concurrency levels each, one
with a declared engine, one on two nodes).

The demo keys are derived from fixed seeds, so the data is the same on every machine; they are
for the demo database only and must never sign a real label.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from registry.models import Label, Model, Vendor
from registry.services import audit as audit_service
from registry.services import keys as key_service
from registry.services import vendors as vendor_service
from registry.services.ingest import ingest
from schemas.attestation import build_attestation_statement
from schemas.dsse import (
    b64encode,
    build_statement,
    key_proof_message,
    keyid_for,
    raw_public_key,
    sign_statement,
)
from schemas.results import fill_results
from schemas.suites import headline_concurrency, meter_bias
from schemas.synthetic import make_label, make_operational_label

# vendor -> (display name, rows); a row is
# (model, task, phase, hardware class, zone, grid g/kWh, power W, units per ~10.5 s trial),
# chosen so that the demo's grades span A to E (energy per unit ~ power / units).
Row = tuple[str, str, str, str, str, float, float, int]
H100, A100, L4 = "nvidia-h100-sxm-80gb", "nvidia-a100-sxm-80gb", "nvidia-l4-24gb"
TC, TG, IC = "text-classification", "text-generation", "image-classification"
DEMO_CATALOGUE: dict[str, tuple[str, list[Row]]] = {
    "northwind-ai": (
        "Northwind AI",
        [
            ("nw-bert-small", TC, "inference", H100, "FR", 56, 180, 1312),
            ("nw-gpt-1b", TG, "inference", H100, "FR", 56, 420, 245),
            ("nw-vit-base", IC, "inference", A100, "SE", 41, 250, 810),
            ("nw-gpt-1b", TG, "training", H100, "FR", 56, 650, 1),
        ],
    ),
    "contoso-labs": (
        "Contoso Labs",
        [
            ("cl-distil-classifier", TC, "inference", H100, "US-CAL", 198, 210, 3063),
            ("cl-llm-7b", TG, "inference", H100, "US-CAL", 198, 610, 99),
            ("cl-resnet50", IC, "inference", L4, "DE", 344, 70, 1021),
        ],
    ),
    "fabrikam": (
        "Fabrikam Models",
        [
            ("fab-tiny-bert", TC, "inference", L4, "IN", 713, 65, 237),
            ("fab-tiny-bert", TC, "training", L4, "IN", 713, 70, 1),
            ("fab-effnet", IC, "inference", H100, "PL", 662, 230, 224),
        ],
    ),
}

# Suite 2: vendor -> rows of (model, task, phase, hardware class, zone, grid g/kWh, power W,
# requests or inferences per ~10.5 s trial, parameters, quality about (None: unavailable)).
# Text generation in Wh per 1,000 requests ~ power x 2.92 / units, graded in its size class; the
# qualities make a Pareto frontier of five models with two below it.
Row2 = tuple[str, str, str, str, str, float, float, int, int, float | None]
B = 1_000_000_000
DEMO_SUITE_2: dict[str, list[Row2]] = {
    "northwind-ai": [
        ("nw-chat-1b", TG, "inference", H100, "FR", 56, 300, 40, int(1.2 * B), 0.18),
        ("nw-chat-8b", TG, "inference", H100, "FR", 56, 450, 28, 8 * B, 0.62),
        ("nw-bert-banking77", TC, "inference", H100, "FR", 56, 200, 1500, 110_000_000, 0.91),
        ("nw-vit-base", IC, "inference", A100, "SE", 41, 250, 810, 86_000_000, None),
    ],
    "contoso-labs": [
        ("cl-chat-3b", TG, "inference", H100, "US-CAL", 198, 420, 20, 3 * B, 0.33),
        ("cl-llm-32b", TG, "inference", H100, "US-CAL", 198, 700, 12, 32 * B, 0.82),
        ("cl-distil-classifier", TC, "inference", H100, "US-CAL", 198, 150, 2000, 66_000_000, None),
    ],
    "fabrikam": [
        ("fab-mini-2b", TG, "inference", H100, "PL", 662, 350, 12, 2 * B, 0.21),
        ("fab-instruct-14b", TG, "inference", H100, "PL", 662, 600, 22, 14 * B, 0.78),
        ("fab-llm-70b", TG, "inference", H100, "PL", 662, 2800, 12, 70 * B, 0.94),
        ("fab-tiny-bert", TC, "inference", L4, "IN", 713, 65, 300, 14_000_000, 0.84),
    ],
}
# A figure the vendor declared beside the measured one (from an lm-evaluation-harness results
# file): shown flagged "declared", never as the measured figure.
DEMO_DECLARED = {
    ("northwind-ai", "nw-chat-8b"): [
        {
            "metric": "exact_match",
            "value": 0.655,
            "source": "lm-evaluation-harness",
            "task": "gsm8k",
            "filter": "strict-match",
            "n_samples": 1319,
            "file_sha256": hashlib.sha256(b"carbonlabel-demo:nw-chat-8b:results.json").hexdigest(),
            "harness_version": "0.4.13",
        }
    ]
}

# Suite 2 chat-serving: vendor -> servers of (model, parameters, engine (name, version, source),
# nodes, levels of (concurrency, power W, seconds per output token)). Energy per request falls
# and latency rises with concurrency; the headline is concurrency 8 (the methodology's standard).
ServingLevel = tuple[int, float, float]
Serving = tuple[str, int, tuple[str, str, str], int, tuple[ServingLevel, ...]]
DEMO_SERVING: dict[str, list[Serving]] = {
    "northwind-ai": [
        (
            "nw-chat-8b",
            8 * B,
            ("vllm", "0.11.0", "server"),
            1,
            ((1, 300, 0.011), (8, 450, 0.016), (32, 620, 0.030)),
        )
    ],
    "contoso-labs": [
        (
            "cl-llm-32b",
            32 * B,
            ("text-generation-inference", "3.3.4", "declared"),
            1,
            ((1, 420, 0.030), (8, 700, 0.040), (32, 900, 0.080)),
        )
    ],
    "fabrikam": [
        (
            "fab-llm-70b",
            70 * B,
            ("vllm", "0.11.0", "server"),
            2,  # two nodes of four GPUs: every window metered on both
            ((1, 2200, 0.035), (8, 2800, 0.045), (32, 3600, 0.085)),
        )
    ],
}
SERVING_TRIALS_PER_LEVEL = 3
SERVING_WINDOW_S = 30.0
GPUS_PER_NODE = 4

DEMO_NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
REVISIONS = ((60, ("v1", 1.0)), (10, ("v2", 0.85)))
"""Every demo model has two labels: v1 60 days before ``DEMO_NOW``, v2 10 days before, with 15%
less power."""
DEMO_REGISTERED = DEMO_NOW - timedelta(days=90)
"""When the demo vendors and their keys were registered: before any label they signed."""


@dataclass
class DemoVendor:
    slug: str
    token: str
    keyid: str


def demo_key(slug: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(
        hashlib.sha256(f"carbonlabel-demo:{slug}".encode()).digest()
    )


def seed(engine: Engine, public_url: str) -> list[DemoVendor]:
    """Fill an empty database with the demo catalogue and return each vendor's API token.

    On a database seeded before, nothing is added; each demo vendor gets a fresh token instead
    (tokens are stored hashed, so the earlier ones cannot be shown again).
    """
    created: list[DemoVendor] = []
    with Session(engine, expire_on_commit=False) as session:
        if session.exec(select(Vendor)).first() is not None:
            for slug in DEMO_CATALOGUE:
                vendor = session.exec(select(Vendor).where(Vendor.slug == slug)).first()
                if vendor is not None:
                    # a new token on every start; the earlier ones stop working
                    vendor_service.revoke_tokens(session, vendor=vendor)
                    token = vendor_service.issue_token(session, vendor=vendor)
                    keyid = keyid_for(demo_key(slug).public_key())
                    created.append(DemoVendor(slug, token, keyid))
            session.commit()
            return created
        for slug, (display, rows) in DEMO_CATALOGUE.items():
            vendor, token = vendor_service.create_vendor(session, slug=slug, display_name=display)
            private = demo_key(slug)
            raw = raw_public_key(private.public_key())
            keyid = keyid_for(raw)
            proof = private.sign(key_proof_message(public_url, slug, keyid))
            key = key_service.register_key(
                session,
                vendor=vendor,
                public_key_b64=b64encode(raw),
                proof_b64=b64encode(proof),
                registry=public_url,
            )
            vendor.created_at = key.created_at = DEMO_REGISTERED
            session.add_all([vendor, key])
            session.commit()
            # chat-serving first: a model's badge shows its most recently received current
            # label, which stays its text-generation one
            for server in DEMO_SERVING.get(slug, []):
                for age_days, (revision, scale) in REVISIONS:
                    label = serving_label(
                        slug,
                        server,
                        registry=public_url,
                        revision=revision,
                        power_scale=scale,
                        created_at=DEMO_NOW - timedelta(days=age_days, hours=len(created)),
                    )
                    envelope = sign_statement(build_statement(label), private)
                    body = json.dumps(envelope).encode()
                    ingest(session, vendor=vendor, body=body, audience=public_url)
                    session.commit()
                # production since the newest revision's benchmark (watch)
                for live in production_periods(slug, server, label, registry=public_url):
                    body = json.dumps(sign_statement(build_statement(live), private)).encode()
                    ingest(session, vendor=vendor, body=body, audience=public_url)
                session.commit()
            suite_2 = [
                (*row[:8], {"suite": "2", "parameter_count": row[8], "quality": row[9], "seed": 2})
                for row in DEMO_SUITE_2.get(slug, [])
            ]
            suite_1: list[tuple[Any, ...]] = [(*row, {}) for row in rows]
            for model, task, phase, hw, zone, intensity, power_w, units, extra in suite_1 + suite_2:
                for age_days, (revision, scale) in REVISIONS:
                    label = make_label(
                        vendor=slug,
                        model=model,
                        registry=public_url,
                        revision=revision,
                        task=task,
                        phase=phase,
                        hardware_class=hw,
                        zone=zone,
                        intensity_g_per_kwh=intensity,
                        power_w=power_w * scale,
                        units_per_trial=units,
                        created_at=DEMO_NOW - timedelta(days=age_days, hours=len(created)),
                        **extra,
                    )
                    _declare(label, DEMO_DECLARED.get((slug, model)))
                    envelope = sign_statement(build_statement(label), private)
                    body = json.dumps(envelope).encode()
                    ingest(session, vendor=vendor, body=body, audience=public_url)
                    session.commit()
            created.append(DemoVendor(slug, token, keyid))
        _audit(session, public_url)
    return created


PRODUCTION_PERIODS = 19
PRODUCTION_PERIOD = timedelta(hours=12)


def production_periods(
    vendor: str, server: Serving, benchmark: dict[str, Any], *, registry: str
) -> list[dict[str, Any]]:
    """``operational`` labels of the days since the newest revision's benchmark, one every 12
    hours (``carbonlabel watch --every 12h``): near the benchmark's energy per request in the
    day's periods, well above it in the night's, when few requests share the idle power (drift on
    the model page)."""
    model = server[0]
    carbon = benchmark["carbon"]
    per_request_j = benchmark["results"]["energy_per_unit_wh"]["mean"] * 3.6
    labels = []
    for n in range(PRODUCTION_PERIODS):
        end = DEMO_NOW - PRODUCTION_PERIOD * (PRODUCTION_PERIODS - 1 - n)
        quiet = end.hour == 12  # the period from midnight to noon
        labels.append(
            make_operational_label(
                vendor=vendor,
                model=model,
                registry=registry,
                period_end=end,
                period_s=PRODUCTION_PERIOD.total_seconds(),
                windows=12,
                revision=benchmark["model"]["revision"],
                requests_per_window=1_000 if quiet else 10_000,
                energy_per_request_j=per_request_j * (1.45 if quiet else 1.05),
                hardware_class=benchmark["hardware"]["hardware_class"],
                zone=carbon["zone"],
                intensity_g_per_kwh=carbon["intensity_g_per_kwh"],
                seed=n,
            )
        )
    return labels


def serving_label(
    vendor: str,
    server: Serving,
    *,
    registry: str,
    revision: str,
    power_scale: float,
    created_at: datetime,
) -> dict[str, Any]:
    """A synthetic chat-serving label with every level of ``server``: closed-loop windows whose
    request count follows from the level's latency (``concurrency x window / end-to-end time``),
    energy from the level's power, per node when there are several."""
    model, parameters, (engine, version, source), nodes, levels = server
    # a meter that retried a read now and then (the flag's plain words show on the model page)
    extra_flags = ["transient-errors"] if vendor == "contoso-labs" else []
    hardware_class = H100
    label = make_label(
        vendor=vendor,
        model=model,
        registry=registry,
        revision=revision,
        task="chat-serving",
        suite="2",
        parameter_count=parameters,
        hardware_class=hardware_class,
        zone={"northwind-ai": "FR", "contoso-labs": "US-CAL"}.get(vendor, "PL"),
        intensity_g_per_kwh={"northwind-ai": 56, "contoso-labs": 198}.get(vendor, 662),
        units_per_trial=24,
        trials=4,
        seed=3,
        created_at=created_at,
    )
    rng = random.Random(f"demo-serving:{vendor}/{model}@{revision}")  # noqa: S311
    names: list[str | None] = [f"{model}-node-{r}" for r in range(nodes)] if nodes > 1 else [None]
    idle = label["traces"]["idle"]
    idle_component = idle["components"][0]
    idle_components = []
    counters: dict[str | None, float] = {}
    for i, name in enumerate(names):
        reading = dict(idle_component)
        if name is not None:
            reading["node"] = name
            reading["counter_start_j"] += 1.0e6 * i
            reading["counter_end_j"] += 1.0e6 * i
        counters[name] = reading["counter_end_j"]
        idle_components.append(reading)
    idle["components"] = idle_components
    clock = float(idle["t_end_s"])
    trials: list[dict[str, Any]] = []
    for _ in range(SERVING_TRIALS_PER_LEVEL):
        for concurrency, power_w, per_token_s in levels:
            clock += 2.0  # cooldown
            window_s = SERVING_WINDOW_S + rng.random()
            trial = _serving_window(rng, concurrency, per_token_s, window_s)
            trial.update(index=len(trials), t_start_s=clock, t_end_s=clock + window_s)
            energy_j = power_w * power_scale * window_s * (1.0 + rng.gauss(0, 0.02))
            trial["components"] = []
            for name in names:
                share_j = energy_j / len(names) * (1.0 + rng.gauss(0, 0.01))
                component: dict[str, Any] = {
                    "name": "gpu",
                    "method": "nvml-energy-counter",
                    "counter_start_j": counters[name],
                    "counter_end_j": counters[name] + share_j,
                }
                if name is not None:
                    component["node"] = name
                counters[name] += share_j
                trial["components"].append(component)
            trials.append(trial)
            clock += window_s
    label["traces"]["trials"] = trials
    concurrency_levels = [level[0] for level in levels]
    serving = label["benchmark"]["workload"]["serving"]
    serving.update(
        engine={"name": engine, "version": version, "source": source},
        served_model=label["model"]["id"],
        concurrency_levels=concurrency_levels,
        headline_concurrency=headline_concurrency(concurrency_levels),
        client_on_metered_host=nodes == 1,
    )
    measurement = label["measurement"]
    bias = meter_bias(hardware_class)
    measurement.update(
        trials=len(trials),
        min_window_s=SERVING_WINDOW_S,
        duration_s=clock - float(idle["t_start_s"]),
        bias=bias,
        flags=([] if bias["validated"] else ["unvalidated-bias"]) + list(extra_flags),
    )
    if nodes > 1:
        _nodes(label, names)
    return fill_results(label)


def _serving_window(
    rng: random.Random, concurrency: int, per_token_s: float, window_s: float
) -> dict[str, Any]:
    """The requests one closed-loop window completes: ``[ttft_s, e2e_s, tokens]`` each."""
    mean_e2e_s = 0.02 + 0.004 * concurrency + 158 * per_token_s
    units = max(2, round(concurrency * window_s / mean_e2e_s))
    requests = []
    for _ in range(units):
        tokens = rng.randint(60, 256)
        ttft_s = 0.02 + 0.004 * concurrency * (0.5 + rng.random())
        e2e_s = ttft_s + tokens * per_token_s * (0.9 + 0.2 * rng.random())
        requests.append([ttft_s, e2e_s, tokens])
    return {
        "units": units,
        "concurrency": concurrency,
        "errors": 1 if concurrency >= 32 and units >= 40 and rng.random() < 0.5 else 0,
        "requests": requests,
        "input_tokens": units * rng.randint(60, 90),
        "output_tokens": sum(r[2] for r in requests),
    }


def _nodes(label: dict[str, Any], names: list[str | None]) -> None:
    """``hardware.nodes``: every node with its GPUs; the accelerator count is their total."""
    hardware = label["hardware"]
    accelerator = dict(hardware["accelerator"], count=GPUS_PER_NODE)
    hardware["nodes"] = [
        {
            "name": name,
            "node_rank": rank,
            "accelerator": dict(accelerator),
            "cpu": dict(hardware["cpu"]),
            "ram_bytes": hardware["ram_bytes"],
        }
        for rank, name in enumerate(names)
    ]
    hardware["accelerator"]["count"] = GPUS_PER_NODE * len(names)


def _declare(label: dict[str, Any], declared: list[dict[str, Any]] | None) -> None:
    """Add declared quality figures to a suite-2 label (nothing to recompute: the registry
    neither measures nor checks them)."""
    if declared and "quality" in label:
        label["quality"]["declared"] = [dict(d) for d in declared]


DEMO_AUDITOR = "greenbench-audit"
# (vendor, model, task, phase, auditor's figure / label's figure): two agree, one does not
DEMO_AUDITS = (
    ("northwind-ai", "nw-bert-small", TC, "inference", 1.04),
    ("contoso-labs", "cl-resnet50", IC, "inference", 0.97),
    ("fabrikam", "fab-effnet", IC, "inference", 1.31),
)


def _audit(session: Session, public_url: str) -> None:
    """An auditor who reproduced three current labels: the verified tier, and a disagreement."""
    private = demo_key("auditor:" + DEMO_AUDITOR)
    raw = raw_public_key(private.public_key())
    proof = private.sign(key_proof_message(public_url, "auditor:" + DEMO_AUDITOR, keyid_for(raw)))
    auditor, _token = audit_service.register_auditor(
        session,
        slug=DEMO_AUDITOR,
        display_name="GreenBench Audit (demo)",
        public_key_b64=b64encode(raw),
        proof_b64=b64encode(proof),
        registry=public_url,
    )
    session.commit()
    for slug, model_name, task, phase, factor in DEMO_AUDITS:
        label = session.exec(
            select(Label)
            .join(Model, col(Model.id) == col(Label.model_id))
            .join(Vendor, col(Vendor.id) == col(Label.vendor_id))
            .where(
                Vendor.slug == slug,
                Model.name == model_name,
                Label.task == task,
                Label.phase == phase,
                Label.suite == "1",
                col(Label.current),
            )
        ).one()
        mean = label.energy_per_unit_wh * factor
        predicate = {
            "label_id": label.id,
            "auditor": DEMO_AUDITOR,
            "reproduced_at": (DEMO_NOW - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "hardware_class": label.hardware_class,
            "trials": 5,
            "results": {
                "functional_unit": label.functional_unit,
                "energy_per_unit_wh": {
                    "mean": mean,
                    "ci95_low": mean * 0.97,
                    "ci95_high": mean * 1.03,
                },
            },
            "notes": "demo data: not a real reproduction",
        }
        statement = build_attestation_statement(label.id, label.payload_sha256, predicate)
        body = json.dumps(sign_statement(statement, private)).encode()
        audit_service.attest(session, auditor=auditor, label_id=label.id, body=body)
        session.commit()

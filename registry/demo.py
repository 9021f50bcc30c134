"""Demo data: a few vendors, models and signed labels, put through the real ingest path.

The demo keys are derived from fixed seeds, so the data is the same on every machine; they are
for the demo database only and must never sign a real label.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

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
from schemas.synthetic import make_label

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


DEMO_NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


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
            key_service.register_key(
                session,
                vendor=vendor,
                public_key_b64=b64encode(raw),
                proof_b64=b64encode(proof),
                registry=public_url,
            )
            session.commit()
            for model, task, phase, hw, zone, intensity, power_w, units in rows:
                for age_days, (revision, scale) in ((60, ("v1", 1.0)), (10, ("v2", 0.85))):
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
                    )
                    envelope = sign_statement(build_statement(label), private)
                    body = json.dumps(envelope).encode()
                    ingest(session, vendor=vendor, body=body, audience=public_url)
                    session.commit()
            created.append(DemoVendor(slug, token, keyid))
        _audit(session, public_url)
    return created


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
                col(Label.current).is_(True),
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

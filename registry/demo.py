"""Demo data: a few vendors, models and signed labels, put through the real ingest path.

The demo keys are derived from fixed seeds, so the data is the same on every machine; they are
for the demo database only and must never sign a real label.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine
from sqlmodel import Session, select

from registry.models import Vendor
from registry.services import keys as key_service
from registry.services import vendors as vendor_service
from registry.services.ingest import ingest
from schemas.dsse import (
    b64encode,
    build_statement,
    key_proof_message,
    keyid_for,
    raw_public_key,
    sign_statement,
)
from schemas.synthetic import make_label

# vendor -> (display name, [(model, task, phase, hardware class, zone, intensity, power_w, units)])
DEMO_CATALOGUE: dict[str, tuple[str, list[tuple[str, str, str, str, str, float, float, int]]]] = {
    "northwind-ai": (
        "Northwind AI",
        [
            (
                "nw-bert-small",
                "text-classification",
                "inference",
                "nvidia-h100-sxm-80gb",
                "FR",
                56,
                180,
                4000,
            ),
            (
                "nw-gpt-1b",
                "text-generation",
                "inference",
                "nvidia-h100-sxm-80gb",
                "FR",
                56,
                420,
                300,
            ),
            (
                "nw-vit-base",
                "image-classification",
                "inference",
                "nvidia-a100-sxm-80gb",
                "SE",
                41,
                250,
                3000,
            ),
            ("nw-gpt-1b", "text-generation", "training", "nvidia-h100-sxm-80gb", "FR", 56, 650, 40),
        ],
    ),
    "contoso-labs": (
        "Contoso Labs",
        [
            (
                "cl-distil-classifier",
                "text-classification",
                "inference",
                "nvidia-h100-sxm-80gb",
                "US-CAL",
                198,
                210,
                5000,
            ),
            (
                "cl-llm-7b",
                "text-generation",
                "inference",
                "nvidia-h100-sxm-80gb",
                "US-CAL",
                198,
                610,
                120,
            ),
            (
                "cl-resnet50",
                "image-classification",
                "inference",
                "nvidia-l4-24gb",
                "DE",
                344,
                70,
                1500,
            ),
        ],
    ),
    "fabrikam": (
        "Fabrikam Models",
        [
            (
                "fab-tiny-bert",
                "text-classification",
                "inference",
                "nvidia-l4-24gb",
                "IN",
                713,
                65,
                2500,
            ),
            (
                "fab-tiny-bert",
                "text-classification",
                "training",
                "nvidia-l4-24gb",
                "IN",
                713,
                70,
                60,
            ),
            (
                "fab-effnet",
                "image-classification",
                "inference",
                "nvidia-h100-sxm-80gb",
                "PL",
                662,
                230,
                5200,
            ),
        ],
    ),
}


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
    """Fill an empty database with the demo catalogue; does nothing if any vendor exists."""
    created: list[DemoVendor] = []
    with Session(engine, expire_on_commit=False) as session:
        if session.exec(select(Vendor)).first() is not None:
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
                for revision, scale in (("v1", 1.0), ("v2", 0.85)):
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
                    )
                    envelope = sign_statement(build_statement(label), private)
                    body = json.dumps(envelope).encode()
                    ingest(session, vendor=vendor, body=body, audience=public_url)
                    session.commit()
            created.append(DemoVendor(slug, token, keyid))
    return created

"""Synthetic registry data at scale for ``bench/scale.py``: N labels in PostgreSQL by COPY.

Shape (``Shape.of``): N labels, N/100 vendors (one active Ed25519 key each), N/10 models (ten per
vendor), the suite-1 tasks x phases x 13 hardware classes of ``schemas/methodology.json``; labels
in groups of four (model, suite, task, phase, hardware class; revisions v1..v4 created in that
order) whose newest is current, so a quarter are current; about 90 % measured, the rest estimated.

Every ``sample_every``-th label (about 1,000 in all) is a real ``schemas.synthetic.make_label``
label of its vendor, model, revision and date, signed with its vendor's key (DSSE, Ed25519). The
others are rendered from templates (real labels per hardware class, task, phase, energy level and
zone) with the label id, vendor, model, revision and date substituted in the predicate and in the
envelope's payload: their envelopes carry the template's signature, which does NOT verify. Typed
columns follow from the document as ingest sets them (``grade_of``, ``suite_columns``);
``payload_sha256`` and the log leaf's ``envelope_sha256`` hash the stored bytes. The transparency
log is real: a ``key-add`` entry per vendor key, then a ``label`` entry per label in the order
received, every perfect subtree in ``log_nodes``, size, root and frontier in ``log_head``.

Loading: ``COPY ... (FORMAT BINARY, FREEZE)`` into tables truncated in the same transaction (rows
frozen and all-visible), ``labels`` on one connection and the log on another, fed from one loop;
triggers and foreign-key checks off (``session_replication_role = replica``: ``check_counts``
stands in for them); the secondary indexes of ``labels`` and ``log_entries`` dropped first and
rebuilt from their own ``pg_indexes`` definitions; TOAST compression lz4 for this session.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import struct
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

REGISTRY_URL = "http://127.0.0.1:8000"
"""The audience the synthetic labels name (servers run with this public URL)."""
PER_GROUP = 4
LEVELS = 16  # energy levels per hardware class, task and phase (measured templates)
ESTIMATE_LEVELS = 4
SAMPLE_TARGET = 1000  # real signed labels per data set
ZONES = (("FR", 56.0), ("DE", 381.0), ("SE", 41.0), ("PL", 662.0), ("GB", 238.0), ("US-CAL", 230.0))
_S = {"vendor": "zz-vendor-zz", "model": "zz-model-zz", "revision": "zz-rev-zz"}
_SENTINEL_ID = "0badc0de-0000-4000-8000-00000000beef"
_SENTINEL_CREATED = datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC)
_EPOCH_PG = datetime(2000, 1, 1, tzinfo=UTC)
_START = datetime(2026, 1, 1, tzinfo=UTC)
_SPAN_US = 300 * 86_400 * 10**6  # labels received over 300 days
_NULL = b"\xff\xff\xff\xff"
_TRUE = b"\x00\x00\x00\x01\x01"
_FALSE = b"\x00\x00\x00\x01\x00"
_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
_TRAILER = struct.pack("!h", -1)
LOADED_TABLES = ("vendors", "models", "public_keys", "api_tokens", "attestations", "labels")
LOG_TABLES = ("log_entries", "log_nodes", "log_head")
INDEXED_TABLES = ("labels", "log_entries")


@dataclass(frozen=True)
class Shape:
    labels: int
    vendors: int
    models: int
    groups: int
    sample_every: int

    @classmethod
    def of(cls, labels: int) -> Shape:
        vendors = max(3, labels // 100)
        models = max(vendors, labels // 10)
        groups = -(-labels // PER_GROUP)
        return cls(labels, vendors, models, groups, max(1, labels // SAMPLE_TARGET))


# PostgreSQL binary COPY fields (length-prefixed, big-endian)
# fmt: off
def f_bytes(data: bytes) -> bytes: return struct.pack("!i", len(data)) + data
def f_text(value: str | None) -> bytes: return _NULL if value is None else f_bytes(value.encode())
def f_int(value: int) -> bytes: return struct.pack("!ii", 4, value)
def f_big(value: int) -> bytes: return struct.pack("!iq", 8, value)
def f_float(x: float | None) -> bytes: return _NULL if x is None else struct.pack("!id", 8, x)
def f_bool(value: bool) -> bytes: return _TRUE if value else _FALSE
def f_time(t: datetime) -> bytes: return f_big((t - _EPOCH_PG) // timedelta(microseconds=1))
def f_jsonb(text: str) -> bytes: return f_bytes(b"\x01" + text.encode())
def row(*fields: bytes) -> bytes: return struct.pack("!h", len(fields)) + b"".join(fields)
# fmt: on


def vendor_slug(v: int) -> str:
    return f"vendor-{v:05d}"


def model_name(m: int) -> str:
    return f"model-{m:06d}"


def vendor_key(slug: str) -> Any:
    """The vendor's Ed25519 key, derived from its slug (so a later run can sign for it too)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    seed = hashlib.sha256(f"carbonlabel-scale:{slug}".encode()).digest()
    return Ed25519PrivateKey.from_private_bytes(seed)


def combos() -> list[tuple[str, str, str]]:
    from schemas.contract import load_methodology

    methodology = load_methodology()
    hardware = list(methodology["hardware_classes"])[:13]
    return [
        (task, phase, hw)
        for task, spec in methodology["tasks"].items()
        for phase in spec["phases"]
        for hw in hardware
    ]


def estimated(label: dict[str, Any]) -> dict[str, Any]:
    """The label with its energy estimated (power samples from a model, as tests/test_pages.py)."""
    from schemas.results import fill_results

    for window in [label["traces"]["idle"], *label["traces"]["trials"]]:
        t0, t1 = window["t_start_s"], window["t_end_s"]
        components = []
        for c in window["components"]:
            power = (c["counter_end_j"] - c["counter_start_j"]) / (t1 - t0)
            samples = [[t0, power], [(t0 + t1) / 2, power * 1.1], [t1, power]]
            components.append({"name": c["name"], "method": "estimate", "samples": samples})
        window["components"] = components
    label["measurement"]["components"] = [{"name": "gpu", "method": "estimate"}]
    label["measurement"]["flags"] = ["estimated"]
    return fill_results(label)


def make(combo: tuple[str, str, str], level: int, measured: bool, **names: Any) -> dict[str, Any]:
    """A real label of this hardware class, task, phase and energy level (power 75-1200 W)."""
    from schemas.synthetic import make_label

    task, phase, hw = combo
    zone, intensity = ZONES[(level + len(task) + len(hw)) % len(ZONES)]
    units = 1 if phase == "training" else 100 if task == "text-generation" else 1000
    label = make_label(task=task, phase=phase, hardware_class=hw, zone=zone,
                       intensity_g_per_kwh=intensity, power_w=75.0 * 2 ** (4 * level / LEVELS),
                       units_per_trial=units, trials=3, registry=REGISTRY_URL, **names)  # fmt: skip
    return label if measured else estimated(label)


def typed_block(label: dict[str, Any]) -> bytes:
    """The columns that follow from the label document (``TYPED_COLUMNS``), as ingest sets them."""
    from registry.services.workloads import grade_of, suite_columns

    measured = "estimate" not in {c["method"] for c in label["measurement"]["components"]}
    suite = suite_columns(label)
    grade, graded_under = grade_of(
        label, measured=measured, suite=suite["suite"], size_class=suite["size_class"]
    )
    energy, results = label["results"]["energy_per_unit_wh"], label["results"]
    # fmt: off
    return b"".join([
        f_text(label["benchmark"]["task"]), f_text(label["benchmark"]["phase"]),
        f_text(label["hardware"]["hardware_class"]), f_text(label["carbon"]["zone"]),
        f_text(results["functional_unit"]), f_bool(measured), f_float(energy["mean"]),
        f_float(energy["ci95_high"]), f_float(label["carbon"]["co2e_per_unit_g"]["mean"]),
        f_text(grade), f_text(graded_under), f_text(suite["suite"]), f_text(suite["size_class"]),
        f_float(suite["quality"]), f_text(suite["quality_metric"]),
        f_float(suite["energy_per_output_token_j"]), f_bool(suite["standard_workload"]),
    ])
    # fmt: on


TYPED_COLUMNS = (
    "task, phase, hardware_class, zone, functional_unit, measured, energy_per_unit_wh, "
    "energy_ci95_high_wh, co2e_per_unit_g, grade, graded_under, suite, size_class, quality, "
    "quality_metric, energy_per_output_token_j, standard_workload"
)
ROW_COLUMNS = (
    "id, vendor_id, model_id, revision, created_at, received_at, keyid, payload_sha256, "
    "envelope, predicate, brief, current, log_index, standing, tier"
)


_FIELDS = {**{v: k for k, v in _S.items()}, _SENTINEL_ID: "label_id",
           _SENTINEL_CREATED.strftime("%Y-%m-%dT%H:%M:%SZ"): "created"}  # fmt: skip
_FIELD_RE = re.compile("|".join(re.escape(sentinel) for sentinel in _FIELDS))


@dataclass(frozen=True)
class Pattern:
    """A rendered template cut at its sentinels: ``render`` puts a row's values there."""

    literals: list[str]
    keys: list[str]

    @classmethod
    def of(cls, text: str) -> Pattern:
        pieces = _FIELD_RE.split(text)
        return cls(pieces, [_FIELDS[m] for m in _FIELD_RE.findall(text)])

    def render(self, values: dict[str, str]) -> str:
        joined = [""] * (2 * len(self.literals) - 1)
        joined[::2] = self.literals
        joined[1::2] = [values[k] for k in self.keys]
        return "".join(joined)


@dataclass
class Template:
    typed: bytes
    predicate: Pattern
    brief: Pattern
    statement: Pattern
    sig: str


def build_templates() -> dict[tuple[int, int, bool], Template]:
    """Templates by (combo index, level, measured), each checked as ingest would check it."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from registry.services.briefs import brief_of
    from schemas import check_results, validate_statement
    from schemas.contract import semantic_issues
    from schemas.dsse import build_statement, sign_statement

    signer = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"scale-template").digest())
    out: dict[tuple[int, int, bool], Template] = {}
    for c, combo in enumerate(combos()):
        keys = [(level, True) for level in range(LEVELS)]
        keys += [(level, False) for level in range(ESTIMATE_LEVELS)]
        for level, measured in keys:
            label = make(combo, level, measured, seed=c, created_at=_SENTINEL_CREATED, **_S)
            label["label_id"] = _SENTINEL_ID
            statement = build_statement(label)
            issues = validate_statement(statement) or semantic_issues(statement)
            if issues or check_results(label):
                raise SystemExit(f"template {combo} {level} is not a valid label: {issues}")
            payload = json.dumps(statement, sort_keys=True, separators=(",", ":"))
            out[(c, level, measured)] = Template(
                typed=typed_block(label),
                predicate=Pattern.of(json.dumps(label, separators=(",", ":"))),
                brief=Pattern.of(json.dumps(brief_of(label), separators=(",", ":"))),
                statement=Pattern.of(payload),
                sig=sign_statement(statement, signer)["signatures"][0]["sig"],
            )
    return out


@dataclass
class Keys:
    """Per vendor (index v): slug, keyid, base64 public key, registration time."""

    slugs: list[str]
    keyids: list[str]
    public_b64: list[str]
    created: list[datetime]

    @classmethod
    def of(cls, shape: Shape) -> Keys:
        from schemas.dsse import keyid_for, raw_public_key

        slugs = [vendor_slug(v) for v in range(shape.vendors)]
        raws = [raw_public_key(vendor_key(slug).public_key()) for slug in slugs]
        created = [_START - timedelta(days=30, seconds=-v) for v in range(shape.vendors)]
        public = [base64.b64encode(raw).decode() for raw in raws]
        return cls(slugs, [keyid_for(raw) for raw in raws], public, created)


def label_leaf(**fields: str) -> bytes:
    """``schemas.tlog.encode_leaf("label", ...)`` for plain ASCII fields, without json.dumps."""
    return (
        '{{"envelope_sha256":"{envelope_sha256}","keyid":"{keyid}","kind":"label",'
        '"label_id":"{label_id}","logged_at":"{logged_at}","payload_sha256":"{payload_sha256}",'
        '"v":1,"vendor":"{vendor}"}}'.format(**fields).encode()
    )


@dataclass
class LabelRow:
    copy_row: bytes  # the labels row, binary COPY format
    leaf: bytes  # its log leaf
    label_id: str
    received_at: datetime
    keyid: str
    sampled: bool  # real and signed


def label_rows(
    shape: Shape, keys: Keys, templates: dict[tuple[int, int, bool], Template], vendor_cols: bool
) -> Iterator[LabelRow]:
    """Every label in the order received (label i: group i % groups, revision i // groups)."""
    from registry.services.briefs import brief_of
    from schemas.dsse import build_statement, sign_statement

    all_combos = combos()
    step_us = _SPAN_US // max(shape.labels, 1)
    start_us = (_START - _EPOCH_PG) // timedelta(microseconds=1)
    naive_epoch = _EPOCH_PG.replace(tzinfo=None)
    ok, tier = f_text("ok"), f_text("self-reported")
    for i in range(shape.labels):
        group, j = i % shape.groups, i // shape.groups
        m = group % shape.models
        v = m % shape.vendors
        c = (m * 7 + (group // shape.models) * 29) % len(all_combos)
        h = (i * 2654435761) & 0xFFFFFFFF
        measured = (h >> 8) % 10 != 0
        level = h % LEVELS if measured else h % ESTIMATE_LEVELS
        received_us = start_us + i * step_us
        created_us = (received_us // 10**6 - 600 - i % 3600) * 10**6
        received = naive_epoch + timedelta(microseconds=received_us)
        created = naive_epoch + timedelta(microseconds=created_us)
        slug, name, revision, keyid = keys.slugs[v], model_name(m), f"v{j + 1}", keys.keyids[v]
        sampled = i % shape.sample_every == 0
        if sampled:
            names = {"vendor": slug, "model": name, "revision": revision, "seed": i}
            label = make(
                all_combos[c], level, measured, created_at=created.replace(tzinfo=UTC), **names
            )
            label_id, statement = label["label_id"], build_statement(label)
            signed = sign_statement(statement, vendor_key(slug))
            envelope = json.dumps(signed, separators=(",", ":")).encode()
            payload = json.dumps(statement, sort_keys=True, separators=(",", ":"))
            predicate, typed = json.dumps(label, separators=(",", ":")), typed_block(label)
            brief = json.dumps(brief_of(label), separators=(",", ":"))
        else:
            t = templates[(c, level, measured)]
            label_id = str(uuid.UUID(int=(i * 0x9E3779B97F4A7C15 + 0x5CA1E) % 2**128, version=4))
            values = {"vendor": slug, "model": name, "revision": revision, "label_id": label_id,
                      "created": created.isoformat() + "Z"}  # fmt: skip
            predicate, payload = t.predicate.render(values), t.statement.render(values)
            brief = t.brief.render(values)
            b64 = base64.b64encode(payload.encode()).decode()
            envelope = (
                f'{{"payloadType":"application/vnd.in-toto+json","payload":"{b64}",'
                f'"signatures":[{{"keyid":"{keyid}","sig":"{t.sig}"}}]}}'
            ).encode()
            typed = t.typed
        payload_sha256 = hashlib.sha256(payload.encode()).hexdigest()
        newest = j == (shape.labels - 1 - group) // shape.groups
        fields = [typed, f_text(label_id), f_int(v + 1), f_int(m + 1), f_text(revision),
                  f_big(created_us), f_big(received_us), f_text(keyid), f_text(payload_sha256),
                  f_bytes(envelope), f_jsonb(predicate), f_jsonb(brief), f_bool(newest),
                  f_big(shape.vendors + i), ok, tier]  # fmt: skip
        if vendor_cols:
            fields += [f_text(slug), f_text(name)]
        logged_at = received.isoformat(timespec="microseconds") + "Z"
        envelope_sha256 = hashlib.sha256(envelope).hexdigest()
        leaf = label_leaf(envelope_sha256=envelope_sha256, keyid=keyid, label_id=label_id,
                          logged_at=logged_at, payload_sha256=payload_sha256,
                          vendor=slug)  # fmt: skip
        row_bytes = struct.pack("!h", 16 + len(fields)) + b"".join(fields)
        at = received.replace(tzinfo=UTC)
        yield LabelRow(row_bytes, leaf, label_id, at, keyid, sampled)


@dataclass
class LoadReport:
    timings_s: dict[str, float] = field(default_factory=dict)
    tree_size: int = 0
    root_hash: bytes = b""
    sample_ids: list[str] = field(default_factory=list)
    label_ids: list[str] = field(default_factory=list)  # a deterministic sample of every kind


class _Stream:
    """A binary COPY into one table, written in chunks of ``chunk`` bytes."""

    def __init__(self, cursor: Any, table: str, columns: str, chunk: int = 4 << 20) -> None:
        self._context = cursor.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY, FREEZE)")
        self._copy = self._context.__enter__()
        self._buffer: list[bytes] = [_HEADER]
        self._size = 0
        self._chunk = chunk

    def add(self, data: bytes) -> None:
        self._buffer.append(data)
        self._size += len(data)
        if self._size >= self._chunk:
            self._copy.write(b"".join(self._buffer))
            self._buffer, self._size = [], 0

    def close(self) -> None:
        self._buffer.append(_TRAILER)
        self._copy.write(b"".join(self._buffer))
        self._context.__exit__(None, None, None)


def _timed(report: LoadReport, name: str) -> Callable[[], None]:
    started = time.perf_counter()

    def done() -> None:
        report.timings_s[name] = time.perf_counter() - started
        print(f"  {name}: {report.timings_s[name]:.1f} s", flush=True)

    return done


def _prepare(conn: Any, tables: tuple[str, ...]) -> None:
    conn.execute("SET session_replication_role = replica")  # no triggers, no FK checks
    conn.execute("SET synchronous_commit = off")
    # lz4, not the server's default pglz: 2.7x faster COPY of the envelopes and predicates here
    conn.execute("SET default_toast_compression = lz4")
    conn.execute(f"TRUNCATE {', '.join(tables)} CASCADE")


def _entry(idx: int, kind: str, leaf: bytes, digest: bytes, at: datetime, label_id: str | None,
           keyid: str) -> bytes:  # fmt: skip
    return row(f_big(idx), f_text(kind), f_bytes(leaf), f_bytes(digest), f_time(at),
               f_text(label_id), f_text(keyid))  # fmt: skip


def _check_leaf(item: LabelRow) -> None:
    """The fast leaf encoding (``label_leaf``) must give the registry's bytes."""
    from schemas.tlog import encode_leaf

    fields = {k: v for k, v in json.loads(item.leaf).items() if k not in ("kind", "v", "logged_at")}
    if encode_leaf("label", item.received_at, **fields) != item.leaf:
        raise SystemExit(f"leaf encoding differs from schemas.tlog: {item.leaf!r}")


def load(dsn: str, shape: Shape) -> LoadReport:
    """Fill the migrated database at ``dsn`` (libpq form) with ``shape``."""
    import psycopg

    from schemas import merkle
    from schemas.tlog import encode_leaf

    report = LoadReport()
    done = _timed(report, "templates and vendor keys")
    templates, keys = build_templates(), Keys.of(shape)
    done()
    with psycopg.connect(dsn, autocommit=True) as admin:
        query = "SELECT column_name FROM information_schema.columns WHERE table_name = 'labels'"
        vendor_cols = {"vendor_slug", "model_name"} <= {r[0] for r in admin.execute(query)}
        indexes = admin.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s) AND indexname"
            " NOT IN (SELECT conname FROM pg_constraint)",
            (list(INDEXED_TABLES),),
        ).fetchall()
        for name, _ in indexes:
            admin.execute(f'DROP INDEX "{name}"')
    done = _timed(report, "COPY labels and log entries")
    hashes: list[bytes] = []
    with psycopg.connect(dsn) as main, psycopg.connect(dsn) as log:
        _prepare(main, LOADED_TABLES)
        _prepare(log, LOG_TABLES)
        cur, log_cur = main.cursor(), log.cursor()
        vendors = _Stream(cur, "vendors", "id, slug, display_name, created_at")
        for v, slug in enumerate(keys.slugs):
            vendors.add(row(f_int(v + 1), f_text(slug), f_text(f"Vendor {v:05d}"),
                            f_time(keys.created[v])))  # fmt: skip
        vendors.close()
        models = _Stream(cur, "models", "id, vendor_id, name, created_at")
        created = f_time(_START - timedelta(days=1))
        for m in range(shape.models):
            models.add(row(f_int(m + 1), f_int(m % shape.vendors + 1), f_text(model_name(m)),
                           created))  # fmt: skip
        models.close()
        pks = _Stream(
            cur, "public_keys", "id, vendor_id, keyid, public_key_b64, status, created_at"
        )
        entries = _Stream(log_cur, "log_entries", "idx, kind, leaf, leaf_hash, logged_at, label_id,"
                          " keyid")  # fmt: skip
        for v, slug in enumerate(keys.slugs):
            keyid, public, at = keys.keyids[v], keys.public_b64[v], keys.created[v]
            pks.add(row(f_int(v + 1), f_int(v + 1), f_text(keyid), f_text(public),
                        f_text("active"), f_time(at)))  # fmt: skip
            leaf = encode_leaf("key-add", at, keyid=keyid, vendor=slug, public_key=public)
            hashes.append(merkle.leaf_hash(leaf))
            entries.add(_entry(v, "key-add", leaf, hashes[-1], at, None, keyid))
        pks.close()
        extra = ", vendor_slug, model_name" if vendor_cols else ""
        labels = _Stream(cur, "labels", f"{TYPED_COLUMNS}, {ROW_COLUMNS}{extra}")
        every = max(1, shape.labels // 500)
        for i, item in enumerate(label_rows(shape, keys, templates, vendor_cols)):
            labels.add(item.copy_row)
            if i < 3 or item.sampled:
                _check_leaf(item)
            hashes.append(merkle.leaf_hash(item.leaf))
            entries.add(_entry(len(hashes) - 1, "label", item.leaf, hashes[-1],
                               item.received_at, item.label_id, item.keyid))  # fmt: skip
            if item.sampled:
                report.sample_ids.append(item.label_id)
            if i % every == 0:
                report.label_ids.append(item.label_id)
        labels.close()
        entries.close()
        for table in ("vendors", "models", "public_keys"):
            main.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                         f" (SELECT max(id) FROM {table}))")  # fmt: skip
        main.commit()
        done()
        done = _timed(report, "log nodes and head")
        _log_nodes(log, hashes, report)
        done()
    finish(dsn, indexes, report)
    return report


def _log_nodes(log: Any, hashes: list[bytes], report: LoadReport) -> None:
    """Every perfect subtree's hash (level by level) and the head: size, root, frontier."""
    from schemas import merkle

    nodes = _Stream(log.cursor(), "log_nodes", "level, idx, hash")
    size, level, current = len(hashes), 0, hashes
    frontier_keys = set(merkle.frontier_keys(size))
    known: dict[merkle.Node, bytes] = {}
    while current:
        for index, digest in enumerate(current):
            nodes.add(row(struct.pack("!ih", 2, level), f_big(index), f_bytes(digest)))
            if (level, index) in frontier_keys:
                known[(level, index)] = digest
        current = [
            merkle.node_hash(a, b) for a, b in zip(current[::2], current[1::2], strict=False)
        ]
        level += 1
    nodes.close()
    report.tree_size, report.root_hash = size, merkle.root_from(size, known)
    log.execute(
        "INSERT INTO log_head (id, tree_size, root_hash, frontier, updated_at)"
        " VALUES (1, %s, %s, %s, now())",
        (size, report.root_hash, merkle.pack_frontier(size, known)),
    )
    log.commit()


def finish(dsn: str, indexes: list[tuple[str, str]], report: LoadReport) -> None:
    """Rebuild the dropped indexes, vacuum and analyse, then the registry's derived tables."""
    import psycopg

    done = _timed(report, "indexes")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        for _, definition in indexes:
            conn.execute(definition)
        done()
        done = _timed(report, "VACUUM ANALYZE")
        conn.execute("VACUUM ANALYZE")
        done()
    try:
        from registry.services.rebuild import rebuild_all
    except ImportError:
        return
    from registry.db import make_engine

    done = _timed(report, "standings rebuild_all")
    engine = make_engine("postgresql+psycopg://" + dsn.split("://", 1)[1])
    with engine.begin() as connection:
        rebuild_all(connection)
    engine.dispose()
    with psycopg.connect(dsn, autocommit=True) as conn:
        query = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        for (table,) in conn.execute(query).fetchall():
            if table not in (*LOADED_TABLES, *LOG_TABLES):
                conn.execute(f'VACUUM ANALYZE "{table}"')
    done()


def check_counts(dsn: str, shape: Shape) -> list[str]:
    """Row counts and the references the disabled foreign-key checks would have enforced."""
    import psycopg

    size = shape.vendors + shape.labels
    expected = {
        "SELECT count(*) FROM vendors": shape.vendors,
        "SELECT count(*) FROM models": shape.models,
        "SELECT count(*) FROM public_keys WHERE status = 'active'": shape.vendors,
        "SELECT count(*) FROM labels": shape.labels,
        "SELECT count(*) FROM labels WHERE current": shape.groups,
        "SELECT count(*) FROM labels WHERE log_index IS NOT NULL": shape.labels,
        "SELECT count(*) FROM log_entries": size,
        "SELECT count(*) FROM log_nodes": sum(size >> level for level in range(size.bit_length())),
        "SELECT tree_size FROM log_head WHERE id = 1": size,
        "SELECT count(*) FROM labels l JOIN models m ON m.id = l.model_id"
        " JOIN vendors v ON v.id = l.vendor_id AND v.id = m.vendor_id": shape.labels,
        "SELECT count(*) FROM log_entries e JOIN labels l ON l.id = e.label_id"
        " AND l.log_index = e.idx": shape.labels,
        "SELECT count(*) FROM (SELECT 1 FROM labels GROUP BY model_id, suite, task, phase,"
        " hardware_class HAVING count(*) FILTER (WHERE current) = 1) g": shape.groups,
        "SELECT count(*) FROM labels l WHERE current AND EXISTS (SELECT 1 FROM labels n WHERE"
        " (n.model_id, n.suite, n.task, n.phase, n.hardware_class) = (l.model_id, l.suite, l.task,"
        " l.phase, l.hardware_class) AND (n.created_at, n.id) > (l.created_at, l.id))": 0,
    }
    failures = []
    with psycopg.connect(dsn) as conn:
        for query, want in expected.items():
            found = conn.execute(query).fetchone()
            got = found[0] if found else None
            if got != want:
                failures.append(f"{query}: {got}, expected {want}")
    return failures

"""Rate limits: the GCRA arithmetic on both backends with a fake clock, the middleware's 429s,
and one limit shared by two server processes on PostgreSQL."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text

from registry.config import Settings
from registry.main import create_app
from registry.services.ratelimit import (
    DatabaseRateLimiter,
    Hit,
    Limit,
    MemoryRateLimiter,
    RateLimiter,
    address_key,
    retry_after_s,
    token_key,
)
from tests.helpers import ADMIN_TOKEN
from tests.server import running_server

START_S = 1_000_000.0  # exactly representable, like every step the tests take


class FakeClock:
    def __init__(self) -> None:
        self.now_s = START_S

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory", "database"])
def make_limiter(request: pytest.FixtureRequest, clock: FakeClock) -> Callable[..., RateLimiter]:
    """A limiter of each backend on the fake clock (the database one on the test database)."""
    if request.param == "memory":
        return lambda **kw: MemoryRateLimiter(clock=clock, **kw)
    engine: Engine = request.getfixturevalue("db")
    return lambda **kw: DatabaseRateLimiter(
        lambda: engine, clock=clock, cleanup_probability=0.0, **kw
    )


PER_S = Limit("token", per_minute=60, burst=3)  # T = 1 s, tau = 3 s


def allowed(limiter: RateLimiter, key: str = "t:k", limit: Limit = PER_S) -> bool:
    return limiter.check([Hit(key, limit)]) is None


def test_burst_then_one_per_interval(make_limiter: Callable[..., RateLimiter], clock: FakeClock):
    limiter = make_limiter()
    assert [allowed(limiter) for _ in range(4)] == [True, True, True, False]
    refusal = limiter.check([Hit("t:k", PER_S)])
    assert refusal is not None
    assert refusal.retry_after_s == 1
    assert refusal.limit == PER_S
    clock.advance(1.0)
    assert [allowed(limiter) for _ in range(2)] == [True, False]


def test_sustained_rate_is_burst_plus_elapsed_over_interval(
    make_limiter: Callable[..., RateLimiter], clock: FakeClock
):
    limiter = make_limiter()
    accepted = 0
    for _ in range(41):  # every 0.25 s for 10 s
        accepted += allowed(limiter)
        clock.advance(0.25)
    assert accepted == 3 + 10


def test_retry_after_is_exact_and_refusals_do_not_extend_it(
    make_limiter: Callable[..., RateLimiter], clock: FakeClock
):
    slow = Limit("address", per_minute=6, burst=2)  # T = 10 s, tau = 20 s
    limiter = make_limiter()
    assert allowed(limiter, "a:x", slow)
    assert allowed(limiter, "a:x", slow)
    clock.advance(2.5)
    refusals = [limiter.check([Hit("a:x", slow)]) for _ in range(5)]
    assert all(r is not None and r.retry_after_s == 8 for r in refusals)  # ceil(7.5)
    clock.advance(7.5)
    assert allowed(limiter, "a:x", slow)
    assert not allowed(limiter, "a:x", slow)


def test_idle_bucket_gets_its_whole_burst_back(
    make_limiter: Callable[..., RateLimiter], clock: FakeClock
):
    limiter = make_limiter()
    for _ in range(5):
        allowed(limiter)
    clock.advance(3600.0)
    assert [allowed(limiter) for _ in range(4)] == [True, True, True, False]


def test_buckets_are_independent(make_limiter: Callable[..., RateLimiter]):
    limiter = make_limiter()
    for _ in range(3):
        assert allowed(limiter, "t:one")
    assert not allowed(limiter, "t:one")
    assert allowed(limiter, "t:two")


def test_several_buckets_in_one_check_each_charged_on_its_own(
    make_limiter: Callable[..., RateLimiter], clock: FakeClock
):
    address = Limit("address", per_minute=60, burst=10)
    token = Limit("token", per_minute=60, burst=1)
    limiter = make_limiter()
    hits = [Hit("t:k", token), Hit("a:x", address)]
    assert limiter.check(hits) is None
    refusal = limiter.check(hits)
    assert refusal is not None
    assert refusal.limit.scope == "token"
    # the address allowed the refused request and was charged: 2 of its 10 are spent
    assert [allowed(limiter, "a:x", address) for _ in range(9)] == [True] * 8 + [False]
    clock.advance(1.0)  # one interval: room for one more in each bucket
    assert limiter.check(hits) is None


def test_longest_wait_wins(make_limiter: Callable[..., RateLimiter]):
    short = Limit("address", per_minute=60, burst=1)  # 1 s
    long = Limit("token", per_minute=1, burst=1)  # 60 s
    limiter = make_limiter()
    hits = [Hit("a:x", short), Hit("t:k", long)]
    assert limiter.check(hits) is None
    refusal = limiter.check(hits)
    assert refusal is not None
    assert (refusal.limit, refusal.retry_after_s) == (long, 60)


def test_zero_disables_a_limit(make_limiter: Callable[..., RateLimiter]):
    limiter = make_limiter()
    off = Limit("token", per_minute=0, burst=0)
    assert all(allowed(limiter, "t:k", off) for _ in range(100))


def test_burst_zero_means_one(make_limiter: Callable[..., RateLimiter]):
    limiter = make_limiter()
    one = Limit("token", per_minute=60, burst=0)
    assert [allowed(limiter, "t:k", one) for _ in range(2)] == [True, False]


def test_retry_after_arithmetic() -> None:
    limit = Limit("token", per_minute=60, burst=3)
    assert retry_after_s(START_S + 3.0, START_S, limit) == 1
    assert retry_after_s(START_S + 3.2, START_S, limit) == 2
    assert retry_after_s(START_S, START_S, limit) == 1  # never 0


def test_memory_backend_bounds_its_buckets(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock=clock, max_buckets=10)
    for i in range(10):
        assert allowed(limiter, f"a:{i}")
    clock.advance(10.0)  # all stale now
    assert allowed(limiter, "a:new")
    assert len(limiter) == 1


# -- the database backend ------------------------------------------------------------------------


def _rows(engine: Engine) -> dict[str, float]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT bucket, tat_s FROM rate_limits")).all()
    return {row.bucket: row.tat_s for row in rows}


def test_database_stores_digests_and_tat(db: Engine, clock: FakeClock) -> None:
    limiter = DatabaseRateLimiter(lambda: db, clock=clock, cleanup_probability=0.0)
    key = token_key(b"Bearer clt_secret")
    assert key is not None
    assert limiter.check([Hit(key, PER_S), Hit("a:127.0.0.1", PER_S)]) is None
    rows = _rows(db)
    assert rows == {key: START_S + 1.0, "a:127.0.0.1": START_S + 1.0}
    assert not any("clt_secret" in bucket for bucket in rows)


def test_database_cleanup_deletes_only_stale_rows(db: Engine, clock: FakeClock) -> None:
    limiter = DatabaseRateLimiter(lambda: db, clock=clock, cleanup_probability=0.0)
    for i in range(5):
        limiter.check([Hit(f"a:old{i}", PER_S)])
    clock.advance(10.0)
    cleaning = DatabaseRateLimiter(lambda: db, clock=clock, cleanup_probability=1.0)
    assert cleaning.check([Hit("a:live", PER_S)]) is None
    assert set(_rows(db)) == {"a:live"}


def test_database_down_fails_open_and_warns_once(
    caplog: pytest.LogCaptureFixture, clock: FakeClock
) -> None:
    broken = create_engine("sqlite:///file:nowhere?mode=ro&uri=true")  # no such file: no table
    limiter = DatabaseRateLimiter(lambda: broken, clock=clock)
    key = token_key(b"Bearer clt_secret")
    assert key is not None
    with caplog.at_level(logging.WARNING, logger="registry.services.ratelimit"):
        for _ in range(3):
            assert limiter.check([Hit(key, Limit("token", 1, 1))]) is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert key not in caplog.text
    assert "clt_secret" not in caplog.text
    broken.dispose()


# -- keys ----------------------------------------------------------------------------------------


def test_address_keys() -> None:
    assert address_key("203.0.113.7") == "a:203.0.113.7"
    assert address_key("2001:db8:1:2:3:4:5:6") == address_key("2001:db8:1:2:ffff::1")
    assert address_key("2001:db8:1:2:3:4:5:6") == "a:2001:db8:1:2::/64"
    assert address_key("::ffff:203.0.113.7") == "a:203.0.113.7"
    assert address_key(None) == "a:unknown"
    assert address_key("testclient") == "a:testclient"
    assert len(address_key("x" * 500)) <= 96


def test_token_keys_are_digests() -> None:
    key = token_key(b"Bearer clt_abc")
    assert key is not None
    assert key.startswith("t:")
    assert len(key) == 66
    assert "clt_abc" not in key
    assert token_key(b"bearer   clt_abc  ") == key
    assert token_key(b"Basic Y2x0X2FiYw==") is None
    assert token_key(b"Bearer ") is None
    assert token_key(b"clt_abc") is None


# -- the middleware ------------------------------------------------------------------------------


def _problem(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/problem+json"
    return str(response.json()["type"]).rsplit(":", 1)[-1]


@pytest.fixture
def limited_client(db: Engine, settings: Settings) -> Iterator[TestClient]:
    limited = settings.model_copy(
        update={
            "rate_limit_per_address_per_minute": 60,
            "rate_limit_per_address_burst": 4,
            "rate_limit_per_minute": 60,
            "rate_limit_burst": 2,
        }
    )
    with TestClient(create_app(limited, engine=db), raise_server_exceptions=False) as client:
        yield client


def test_address_limit_on_every_v1_request(limited_client: TestClient) -> None:
    codes = [limited_client.get("/v1/labels").status_code for _ in range(5)]
    assert codes == [200, 200, 200, 200, 429]
    response = limited_client.get("/v1/vendors/acme")
    assert response.status_code == 429
    assert _problem(response) == "rate-limited"
    assert int(response.headers["retry-after"]) >= 1
    assert "client address" in response.json()["detail"]
    assert response.json()["instance"] == "/v1/vendors/acme"


def test_badges_pages_and_health_are_not_limited(limited_client: TestClient) -> None:
    for _ in range(10):
        assert limited_client.get("/badge/acme/m.svg").status_code != 429
        assert limited_client.get("/").status_code == 200
        assert limited_client.get("/healthz").status_code == 200
        assert limited_client.get("/static/nothing.css").status_code != 429
    assert limited_client.get("/v1/labels").status_code == 200


def test_token_limit_on_writes_before_authentication(limited_client: TestClient) -> None:
    bogus = {"Authorization": "Bearer clt_not-a-real-token"}
    first = limited_client.post("/v1/labels", content=b"{}", headers=bogus)
    second = limited_client.post("/v1/labels", content=b"{}", headers=bogus)
    third = limited_client.post("/v1/labels", content=b"{}", headers=bogus)
    assert [first.status_code, second.status_code, third.status_code] == [401, 401, 429]
    assert "API token" in third.json()["detail"]
    assert third.headers["connection"] == "close"
    # another token has its own bucket (the address, burst 4, has one request left)
    other = limited_client.post(
        "/v1/labels", content=b"{}", headers={"Authorization": "Bearer clt_other"}
    )
    assert other.status_code == 401
    metrics = limited_client.get("/metrics").text
    assert 'carbonlabel_label_submissions_total{outcome="rate-limited"} 1.0' in metrics


def test_reads_with_a_token_do_not_spend_the_token(db: Engine, settings: Settings) -> None:
    limited = settings.model_copy(update={"rate_limit_per_minute": 60, "rate_limit_burst": 1})
    with TestClient(create_app(limited, engine=db)) as client:
        headers = {"Authorization": "Bearer clt_reader"}
        for _ in range(5):
            assert client.get("/v1/labels", headers=headers).status_code == 200
        assert client.post("/v1/labels", content=b"{}", headers=headers).status_code == 401
        assert client.post("/v1/labels", content=b"{}", headers=headers).status_code == 429


def test_zero_disables_both_limits(db: Engine, settings: Settings) -> None:
    off = settings.model_copy(
        update={"rate_limit_per_address_per_minute": 0, "rate_limit_per_minute": 0}
    )
    with TestClient(create_app(off, engine=db)) as client:
        headers = {"Authorization": "Bearer clt_x"}
        for _ in range(30):
            assert client.post("/v1/labels", content=b"{}", headers=headers).status_code == 401


def test_backend_choice(database_url: str) -> None:
    sqlite = Settings(database_url="sqlite:///x.db")
    postgres = Settings(database_url="postgresql://u@h/d")
    assert sqlite.resolved_rate_limit_backend() == "memory"
    assert postgres.resolved_rate_limit_backend() == "database"
    forced = Settings(database_url="sqlite:///x.db", rate_limit_backend="database")
    assert forced.resolved_rate_limit_backend() == "database"
    app = create_app(Settings(database_url=database_url))
    expected = MemoryRateLimiter if database_url.startswith("sqlite") else DatabaseRateLimiter
    assert isinstance(app.state.rate_limiter, expected)


def test_documented_defaults() -> None:
    settings = Settings()
    assert (settings.rate_limit_per_minute, settings.rate_limit_burst) == (600, 60)
    assert settings.rate_limit_per_address_per_minute == 1200
    assert settings.rate_limit_per_address_burst == 120
    assert settings.rate_limit_backend == "auto"


def test_negative_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        Settings(rate_limit_per_minute=-1)


# -- several processes, one limit ----------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.server
@pytest.mark.parametrize("scope", ["address", "token"])
def test_two_server_processes_share_one_limit(postgres_url: str, db: Engine, scope: str) -> None:
    per_minute, burst = 30, 5  # T = 2 s
    env = {"CARBONLABEL_RATE_LIMIT_BACKEND": "database"}
    if scope == "address":
        env |= {
            "CARBONLABEL_RATE_LIMIT_PER_ADDRESS_PER_MINUTE": str(per_minute),
            "CARBONLABEL_RATE_LIMIT_PER_ADDRESS_BURST": str(burst),
        }
    else:
        env |= {
            "CARBONLABEL_RATE_LIMIT_PER_MINUTE": str(per_minute),
            "CARBONLABEL_RATE_LIMIT_BURST": str(burst),
        }
    headers = {"Authorization": "Bearer clt_shared-by-both-servers"}
    with (
        running_server(postgres_url, ADMIN_TOKEN, **env) as first,
        running_server(postgres_url, ADMIN_TOKEN, **env) as second,
        httpx.Client(timeout=30) as http,
    ):
        bases = [first, second]
        answers: list[tuple[str, httpx.Response]] = []
        started = time.monotonic()
        for i in range(40):
            base = bases[i % 2]
            if scope == "address":
                response = http.get(f"{base}/v1/labels")
            else:
                response = http.post(f"{base}/v1/labels", content=b"{}", headers=headers)
            answers.append((base, response))
        elapsed_s = time.monotonic() - started
    passed = 200 if scope == "address" else 401  # a bogus token passes the limit, then fails
    accepted = Counter(base for base, r in answers if r.status_code == passed)
    refused = [r for _, r in answers if r.status_code == 429]
    total = sum(accepted.values())
    assert total + len(refused) == 40, [r.status_code for _, r in answers]
    # per-process limits would accept `burst` on each server: 2 * burst
    assert 0 < total <= burst + elapsed_s * per_minute / 60, (total, elapsed_s)
    assert set(accepted) == {first, second}  # requests alternate: both servers accepted some
    assert refused
    for response in refused:
        assert _problem(response) == "rate-limited"
        assert int(response.headers["retry-after"]) >= 1
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM rate_limits")).scalar_one() >= 1

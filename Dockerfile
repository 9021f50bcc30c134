# carbonlabel registry: migrations, then uvicorn. Build: docker build -t carbonlabel .
# Run:  docker run -e CARBONLABEL_ADMIN_TOKEN=... -e CARBONLABEL_DATABASE_URL=postgresql://... \
#         -e CARBONLABEL_PUBLIC_URL=https://registry.example -p 8000:8000 carbonlabel

FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY carbonlabel ./carbonlabel
COPY schemas ./schemas
COPY registry ./registry
COPY bench_runner ./bench_runner
COPY alembic ./alembic
COPY web ./web
COPY scripts/docker-entrypoint.sh ./scripts/docker-entrypoint.sh
# Editable install: the package stays in /app, next to the migrations it runs.
RUN pip install --no-cache-dir -e .

FROM python:3.11-slim-bookworm AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    XDG_DATA_HOME=/data
RUN groupadd --system --gid 10001 carbonlabel \
    && useradd --system --uid 10001 --gid carbonlabel --home-dir /app --shell /usr/sbin/nologin carbonlabel \
    && mkdir -p /data \
    && chown carbonlabel:carbonlabel /data
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
WORKDIR /app
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; url = 'http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'); sys.exit(0 if urllib.request.urlopen(url, timeout=4).status == 200 else 1)"]
ENTRYPOINT ["/app/scripts/docker-entrypoint.sh"]

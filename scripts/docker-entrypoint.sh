#!/bin/sh
# Apply the migrations, then serve. Settings come from CARBONLABEL_* environment variables.
set -eu
carbonlabel db upgrade
exec uvicorn --factory registry.main:create_app \
  --host 0.0.0.0 --port "${PORT:-8000}" \
  --workers "${CARBONLABEL_WORKERS:-1}" \
  --proxy-headers --forwarded-allow-ips="${FORWARDED_ALLOW_IPS:-127.0.0.1}"

#!/bin/sh
# Apply the migrations, then serve (both done by `carbonlabel serve`, which also refuses to start,
# with one line, when a setting is missing). Settings come from CARBONLABEL_* variables;
# uvicorn reads FORWARDED_ALLOW_IPS for proxy headers.
set -eu
exec carbonlabel serve --host 0.0.0.0 --port "${PORT:-8000}" --workers "${CARBONLABEL_WORKERS:-1}"

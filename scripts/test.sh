#!/usr/bin/env bash
# Set up from nothing and run every check: lint, format, types, layers, tests.
# PostgreSQL (127.0.0.1:5432) and MariaDB (127.0.0.1:3306) are used when up;
# outside CI their tests skip with a message saying how to start them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
echo "== ruff"; .venv/bin/ruff check src tests bench model examples
echo "== ruff format"; .venv/bin/ruff format --check src tests bench model examples
echo "== mypy (strict)"; .venv/bin/mypy
echo "== import-linter"; .venv/bin/lint-imports
echo "== pytest"; .venv/bin/pytest "$@"

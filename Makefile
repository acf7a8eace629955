# The two commands of the README: `make demo` (the main job) and `make test` (the whole suite).
# Both set up what they need first (idempotent).
.PHONY: setup demo test lint bench

setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/hf-ser demo

test:
	bash scripts/setup.sh --with-browser
	.venv/bin/python -m pytest -q

lint: setup
	.venv/bin/ruff check src tests examples benchmarks space_app
	.venv/bin/ruff format --check src tests examples benchmarks space_app

bench: setup
	.venv/bin/python benchmarks/run_benchmarks.py

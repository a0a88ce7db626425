# torch-ir: `make demo` and `make test` work on a fresh machine with only Python 3.11.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LOCK := requirements.lock
LOCK_VENV := .venv-lock
MERMAID_JS := .mermaid-js
MERMAID_STAMP := $(MERMAID_JS)/.installed

.PHONY: install lock demo test filecheck optest lint bench fuzz mutate docs clean mermaid-js sweep

$(PY):
	$(PYTHON) -m venv $(VENV)

# Every package of the test, demo, docs and benchmark environment comes from requirements.lock (exact
# versions, sha256 hashes); torch-ir itself is installed on top, editable, without resolving anything.
$(STAMP): $(PY) $(LOCK) pyproject.toml
	$(PY) -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m pip check
	touch $(STAMP)

install: $(STAMP)

# Re-resolve pyproject.toml's extras and requirements.in into requirements.lock (in a venv of its own, so
# the resolver's packages never enter the locked environment); commit the result.
$(LOCK_VENV)/bin/pip-compile:
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install --quiet pip-tools

lock: $(LOCK_VENV)/bin/pip-compile
	$(LOCK_VENV)/bin/pip-compile --quiet --upgrade --generate-hashes --allow-unsafe --strip-extras \
		--no-emit-index-url --no-emit-find-links --extra dev --extra docs --extra bench --extra viz --extra mutate \
		--output-file $(LOCK) pyproject.toml requirements.in

demo: $(STAMP)
	$(VENV)/bin/torch-ir extract zoo:gpt -o demo_out/gpt.json --format json,mermaid,markdown

# The real Mermaid parser (npm: mermaid + jsdom) for tests/test_mermaid.py, installed once into $(MERMAID_JS)
# when npm is present; without npm (or the registry) the test that needs it is skipped, never failed.
$(MERMAID_STAMP):
	@if command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1; then \
		mkdir -p $(MERMAID_JS) && \
		( [ -f $(MERMAID_JS)/package.json ] || echo '{"name": "torch-ir-mermaid-check", "private": true}' > $(MERMAID_JS)/package.json ) && \
		( cd $(MERMAID_JS) && timeout 600 npm install --no-audit --no-fund --silent mermaid@11 jsdom ) && touch $@ \
		|| echo "note: npm install of the mermaid parser failed; its test will be skipped"; \
	else \
		echo "note: npm not found; the real Mermaid parser test will be skipped"; \
	fi

mermaid-js: $(MERMAID_STAMP)

test: $(STAMP) mermaid-js
	$(VENV)/bin/ruff check torch_ir tests benchmarks examples scripts
	TORCH_IR_MERMAID_JS=$(CURDIR)/$(MERMAID_JS) $(PY) -m pytest -q -p no:cacheprovider

# The FileCheck suite alone (make test runs it too, through tests/test_filecheck.py); TESTS= names one
# file or folder of it: make filecheck TESTS=tests/filecheck/passes/cse.tir
filecheck: $(STAMP)
	$(VENV)/bin/lit -v $(or $(TESTS),tests/filecheck)

# Every OpInfo of PyTorch's op database through torch-ir, against torch.export itself; rewrites
# docs/opinfo-results.json and docs/operators.md.
optest: $(STAMP)
	$(PY) scripts/gen_operators_doc.py --opinfo

lint: $(STAMP)
	$(VENV)/bin/ruff check torch_ir tests benchmarks examples scripts
	$(VENV)/bin/ruff format --check torch_ir tests benchmarks examples scripts
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) -m pytest benchmarks -q -p no:cacheprovider -o python_files='bench_*.py' --benchmark-only \
		--benchmark-json=benchmarks/results.json
	$(PY) benchmarks/write_results.py benchmarks/results.json benchmarks/RESULTS.md

fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest -q -p no:cacheprovider tests/test_fuzz_ir_loaders.py tests/test_fuzz_specs.py tests/test_fuzz_run_ir.py

# Mutation testing of the core with mutmut (long: see docs/testing.md; not part of `make test`): each module of
# scripts/mutate.toml against its own tests; rewrites docs/testing.md's table and docs/mutation-survivors.md.
# MODULES="sandbox passes" runs only those.
mutate: $(STAMP)
	nice -n 10 $(PY) scripts/mutate.py $(MODULES)

docs: $(STAMP)
	$(PY) scripts/gen_api_docs.py
	$(VENV)/bin/mkdocs build --strict

clean:
	rm -rf $(VENV) $(LOCK_VENV) $(MERMAID_JS) demo_out reports site .pytest_cache

# Every decoder-only causal LM of the installed transformers and every control-flow shape of
# scripts/control_flow_cases.py through extraction and verification, one process per case with a timeout
# (slow: an hour or more); writes the table of docs/models.md. Not part of `make test`.
sweep: $(STAMP)
	nice $(PY) scripts/sweep.py $(SWEEP_ARGS)

# Developer entry points. `make test` is the README's (and CI's) test command.
# Every target installs nothing by itself except `install`, which test and demo depend on; it is
# idempotent and quick once the caches are warm (see .ci/install).

PYTHON ?= python
PYTEST_ARGS ?=

.PHONY: help install test unit integration demo crds lock-policy verify lint bench image image-check image-lock

help:
	@echo "make install      Python packages, control-plane binaries, kubectl, helm, registry (.ci/install)"
	@echo "make test         install what is missing, then run every test (unit + integration)"
	@echo "make unit         unit tests only (no control plane)"
	@echo "make integration  integration tests only"
	@echo "make demo         install what is missing, then run the end-to-end story (padlock demo)"
	@echo "make crds         regenerate crds/ and charts/padlock/crds/ from padlock.api"
	@echo "make lock-policy  regenerate the lock policy template and docs/security.md tables from the lock table"
	@echo "make verify       regenerate CRDs and the lock policy; fail if the checked-in files differ"
	@echo "make lint         ruff + mypy"
	@echo "make bench        run the benchmarks (they print figures; nothing is asserted)"
	@echo "make image        build the operator image (OCI, no Docker; cached) with image/build.sh"
	@echo "make image-check  build the image twice from scratch and fail unless the digests match"
	@echo "make image-lock   re-pin the image's Python dependencies (image/requirements.lock)"

install:
	bash .ci/install

test: install
	$(PYTHON) -m pytest $(PYTEST_ARGS)

unit:
	$(PYTHON) -m pytest tests/unit -q $(PYTEST_ARGS)

integration:
	$(PYTHON) -m pytest tests/integration -q $(PYTEST_ARGS)

demo: install
	$(PYTHON) -m padlock demo

crds:
	$(PYTHON) -m padlock.api.schema --write

lock-policy:
	$(PYTHON) -m padlock.policy.lock_policy --write

verify: crds lock-policy
	git diff --exit-code -- crds charts/padlock/crds charts/padlock/templates/lock-policy.yaml docs/security.md

lint:
	$(PYTHON) -m ruff check operator tests bench
	$(PYTHON) -m mypy
	PYTHONPATH=operator lint-imports

bench:
	$(PYTHON) bench/controlplane_start.py
	@for script in $$(find bench -mindepth 2 -name '*.py' | sort); do \
		echo "== $$script"; $(PYTHON) $$script || exit $$?; \
	done

# The operator image (docs/image.md). IMAGE_PUSH=127.0.0.1:5000/padlock also copies it to a registry.
image:
	bash image/build.sh $(if $(IMAGE_PUSH),--push $(IMAGE_PUSH))

image-check:
	bash image/build.sh --check

image-lock:
	$(PYTHON) image/lock.py

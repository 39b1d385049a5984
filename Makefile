# Two commands for a fresh machine (see README):
#   make run   — set everything up, train the default model version on the reference data and
#                import the reference appeals into the embedded SQLite store, classified and routed
#   make test  — the test suite
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# Where the reference data sets live (folder holding spb_our_city_appeals/)
MCU_SHARED_DATA_DIR ?= $(abspath ../shared/data)
export MCU_SHARED_DATA_DIR

.PHONY: setup system run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip wheel "setuptools<81"

setup: $(BIN)/python
	bash .ci/setup-system.sh
	$(BIN)/pip install -q -e ".[train,scale,dev]" torch==2.13.0

run: setup
	$(BIN)/mcu-nlp run

test:
	@test -x $(BIN)/pytest || $(MAKE) setup
	$(BIN)/pytest -q

lint:
	$(BIN)/ruff check mcu_nlp api training
	$(BIN)/mypy mcu_nlp

clean:
	rm -rf $(VENV) var .pytest_cache

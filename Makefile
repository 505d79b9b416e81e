# gpufleet.vllm developer entry points: `make test` (everything CI runs) and `make demo`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
BUILD := .build
# The checkout seen as an installed collection, so that FQCNs and
# `ansible_collections.gpufleet.vllm` imports resolve without installing.
COLLECTIONS := $(BUILD)/collections
COLLECTION_LINK := $(COLLECTIONS)/ansible_collections/gpufleet/vllm
export ANSIBLE_COLLECTIONS_PATH := $(abspath $(COLLECTIONS))
export PATH := $(abspath $(BIN)):$(PATH)
# Where the sandbox inventory finds the generated model and its API key.
export GPUFLEET_BUILD_DIR := $(abspath $(BUILD))

.PHONY: help
help:
	@echo "make demo        deploy vLLM on a sandbox host and print a completion"
	@echo "make demo-clean  remove the sandbox host and what the demo built"
	@echo "make test        every check CI runs (unit, sanity, lint, build, integration, molecule)"
	@echo "make bench       service start-up, throughput, re-run cost, image distribution (docs/benchmarks.md)"

# requirements-dev.txt includes requirements.txt: the venv holds the operator's tools and the test tools.
$(BIN)/activate: requirements.txt requirements-dev.txt
	command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is missing: install Python 3.11 or set PYTHON=python3.12."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

.PHONY: venv
venv: $(BIN)/activate

$(COLLECTION_LINK):
	mkdir -p $(dir $@)
	ln -sfn $(abspath .) $@

.PHONY: unit
unit: venv $(COLLECTION_LINK)
	PYTHONPATH=$(abspath $(COLLECTIONS)) $(BIN)/pytest -q tests/unit

# ansible-test must run inside a directory named ansible_collections/<namespace>/<name>.
SANITY_ROOT := $(BUILD)/sanity/ansible_collections/gpufleet/vllm
# ansible-core 2.19 bootstraps pip 24.2 in its sanity venvs from this cache path.
GET_PIP_CACHE := $(HOME)/.ansible/test/cache/get_pip_24_2.py

$(GET_PIP_CACHE): tests/offline_get_pip.py
	mkdir -p $(dir $@)
	cp $< $@

.PHONY: tools
tools:
	@command -v git >/dev/null || { echo "git is missing: install it (apt-get install git)."; exit 1; }
	@command -v shellcheck >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null; \
	  else echo "shellcheck is missing and cannot be installed here: install it (apt-get install shellcheck) and run again."; exit 1; fi; }

.PHONY: sanity
sanity: venv tools $(GET_PIP_CACHE)
	rm -rf $(BUILD)/sanity
	mkdir -p $(SANITY_ROOT)
	git ls-files -z --cached --others --exclude-standard \
	  | xargs -0 -r sh -c 'for f; do [ -e "$$f" ] && printf "%s\0" "$$f"; done' sh \
	  | tar --null -T - -cf - | tar -xf - -C $(SANITY_ROOT)
	# The copy lies inside this git work tree, which ignores it: give it its own index
	# so that ansible-test sees its files.
	cd $(SANITY_ROOT) && git init -q && git add -A
	cd $(SANITY_ROOT) && ansible-test sanity --venv --python 3.11 --color no

# Every image recipe, found by name so that a new variant's Dockerfile is linted without an edit here.
RECIPE_DOCKERFILES := $(wildcard roles/vllm_image/files/*/Dockerfile*)

.PHONY: lint
lint: venv $(COLLECTION_LINK)
	ansible-lint
	hadolint --config .hadolint.yaml $(RECIPE_DOCKERFILES)

DIST := $(BUILD)/dist
INSTALLED := $(BUILD)/installed

.PHONY: build
build: venv
	rm -rf $(DIST) $(INSTALLED)
	ansible-galaxy collection build --force --output-path $(DIST)
	# The install resolves galaxy.yml's dependencies for real, offline: ansible-galaxy counts the
	# collections the `ansible` package put in the venv as installed, so a range they do not meet
	# fails here instead of reaching for Ansible Galaxy.
	ansible-galaxy collection install --offline --force -p $(INSTALLED) $(DIST)/gpufleet-vllm-*.tar.gz
	# Every module, found by name, so that a new one is checked without an edit here.
	for module in $(basename $(notdir $(wildcard plugins/modules/*.py))); do \
	  ANSIBLE_COLLECTIONS_PATH=$(abspath $(INSTALLED)) ansible-doc gpufleet.vllm.$$module | grep -q "gpufleet.vllm.$$module"; \
	  echo "ansible-doc gpufleet.vllm.$$module: ok"; \
	done

SANDBOX := tests/sandbox
MODEL := $(BUILD)/models/tiny-llama

.PHONY: docker-engine
docker-engine:
	$(SANDBOX)/ensure-docker.sh

.PHONY: sandbox-image
sandbox-image: docker-engine
	$(SANDBOX)/build-base-image.sh

.PHONY: model
model: venv
	$(BIN)/python $(SANDBOX)/tiny_model.py $(MODEL)

.PHONY: sandbox-up
sandbox-up: venv $(COLLECTION_LINK) sandbox-image
	ansible-playbook -i localhost, $(SANDBOX)/host.yml

.PHONY: demo
demo: sandbox-up model
	ansible-playbook site.yml -i inventories/sandbox
	$(BIN)/python $(SANDBOX)/ask.py --base-url http://127.0.0.1:18000/v1 \
	  --api-key-file $(BUILD)/sandbox/api-key --model tiny --prompt "The capital of France is"

.PHONY: bench
bench: demo
	$(BIN)/python tests/bench/bench.py
	$(BIN)/python tests/bench/distribution.py

.PHONY: demo-clean
demo-clean: venv
	ansible-playbook -i localhost, $(SANDBOX)/host.yml -e sandbox_state=absent -e sandbox_purge=true
	rm -rf $(BUILD)/sandbox $(BUILD)/models

# A real registry for vllm_image's push and pull paths (Debian's distribution registry).
# After the sandbox image, whose scripts may install Docker and debootstrap: apt serves one install at a
# time, and `make test` asks for both side by side.
.PHONY: registry-server
registry-server: | sandbox-image
	@command -v docker-registry >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry >/dev/null; \
	  else echo "docker-registry is missing and cannot be installed here: install it (apt-get install docker-registry) and run again."; exit 1; fi; }

.PHONY: integration
integration: venv $(COLLECTION_LINK) sandbox-image registry-server
	PYTHONPATH=$(abspath $(COLLECTIONS)) $(BIN)/pytest -q tests/integration

.PHONY: molecule
# Chains run side by side, each in its order: fleet follows default because its first host reuses
# the engine store where default built the cpu image; the driver, metrics and GPU check-run scenarios,
# which need no image, mostly wait on Debian's archive meanwhile.
IMAGE_SCENARIOS := default fleet
DRIVER_SCENARIOS := driver_k80 driver_cuda_repo driver_roll metrics gpu_fleets
LOGS := $(BUILD)/logs

molecule: venv $(COLLECTION_LINK) sandbox-image model
	$(BIN)/python tests/molecule_chains.py $(LOGS) "$(IMAGE_SCENARIOS)" "$(DRIVER_SCENARIOS)"

# make test's long half: the image scenarios, which keep the two cores busy building and serving.
.PHONY: molecule-images
molecule-images: venv $(COLLECTION_LINK) sandbox-image model
	$(BIN)/python tests/molecule_chains.py $(LOGS) "$(IMAGE_SCENARIOS)"

# make test's other half, beside it: the checks that need no sandbox host, the integration tests, then the
# driver scenarios, which wait on Debian's archive more than they compute. The image scenarios take longest,
# so they start first instead of after these.
.PHONY: checks-and-drivers
checks-and-drivers: venv $(COLLECTION_LINK) sandbox-image registry-server
	$(MAKE) --no-print-directory unit sanity lint build inventories integration
	$(BIN)/python tests/molecule_chains.py $(LOGS) "$(DRIVER_SCENARIOS)"

FLEETS := $(notdir $(wildcard inventories/*))

.PHONY: inventories
inventories: venv $(COLLECTION_LINK)
	for fleet in $(FLEETS); do \
	  ansible-inventory -i inventories/$$fleet --list >/dev/null; \
	  ansible-playbook --syntax-check -i inventories/$$fleet site.yml >/dev/null; \
	  echo "inventories/$$fleet: inventory and syntax ok"; \
	done

.PHONY: test
test: venv $(COLLECTION_LINK)
	$(MAKE) --no-print-directory --jobs 2 molecule-images checks-and-drivers

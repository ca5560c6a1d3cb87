# slfm_ros without a ROS installation: every target sets up .venv first (quick when it is
# up to date), see tools/setup_env.sh.
#
#   make setup   .venv with ROS 2 Kilted wheels, torch (CPU), audio_common_msgs, slfm_ros
#   make demo    the main job on shipped defaults, no hardware needed
#   make follow-demo  closed loop: a simulated robot turns to a talker (FOLLOW_AZIMUTH=150,
#                FOLLOW_RECEIVER=stereo_array|spherical_head); plot in out/follow-demo/
#   make adapt-demo  a model learns an unknown receiver from turning bags without labels
#                (ADAPT_RECEIVER=stereo_array:0.30, ADAPT_OUT=out/adapt-demo: one folder per
#                receiver); before/after table, plot in ADAPT_OUT
#   make test    all tests (TESTS=test/nodes to narrow, PYTEST_ARGS="-k mic", PYTEST_TIMEOUT s)
#   make lint    ruff (lint + format check) and mypy on slfm_ros/core
#   make bench   network latency per backend, then the real-time pipeline (BENCH_SECONDS=600)
#   make clean   build outputs and caches; `make distclean` also removes .venv

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV ?= $(CURDIR)/.venv
BIN := $(VENV)/bin
TESTS ?= test
PYTEST_TIMEOUT ?= 300
PYTEST_ARGS ?=
# Length of the timed stream of the pipeline benchmark (600 for the 10-minute soak).
BENCH_SECONDS ?= 60
# Where the talker of `make follow-demo` stands (degrees, left positive) and what hears it.
FOLLOW_AZIMUTH ?= 150
FOLLOW_RECEIVER ?= stereo_array
# The microphones `make adapt-demo` records through (sofa:FILE, spherical_head:R, stereo_array:D).
ADAPT_RECEIVER ?= stereo_array:0.30
# Where it keeps its bags, adapted model and plot (a folder serves one receiver).
ADAPT_OUT ?= out/adapt-demo
# The sandboxes of several users share the machine: keep numeric libraries to one thread
# unless the caller says otherwise.
export OMP_NUM_THREADS ?= 1
# Guard variable of the ROS wheels' start-up hook; inherited from another venv it would stop
# .venv's interpreter from setting its own library path.
unexport _ROS_WHEELS_BOOTSTRAP_COMPLETE

.PHONY: help setup test lint format demo follow-demo adapt-demo bench clean distclean

help:
	@sed -n 's/^#   //p' $(firstword $(MAKEFILE_LIST))

setup:
	@PYTHON="$(PYTHON)" VENV="$(VENV)" bash tools/setup_env.sh

test: setup
	$(BIN)/python -m pytest $(TESTS) --timeout=$(PYTEST_TIMEOUT) $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m mypy slfm_ros/core

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

demo: setup
	$(BIN)/slfm demo

follow-demo: setup
	$(BIN)/slfm follow-demo --source-azimuth $(FOLLOW_AZIMUTH) --receiver $(FOLLOW_RECEIVER)

adapt-demo: setup
	$(BIN)/slfm adapt-demo --receiver $(ADAPT_RECEIVER) --out $(ADAPT_OUT)

bench: setup
	$(BIN)/slfm bench --backend all
	$(BIN)/slfm bench pipeline --seconds $(BENCH_SECONDS)

clean:
	rm -rf build install log .pytest_cache .mypy_cache .ruff_cache *.egg-info
	find . -path ./.venv -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)

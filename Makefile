# The two README commands: `make demo` and `make test`.
# Both bootstrap .venv on a machine that has only Python 3.11+ and make.
PYTHON ?= python3
VENV ?= .venv
# The CPU build of torch is installed first so that the package's open torch
# range does not pull a multi-GB CUDA build. Override: make test TORCH_SPEC=torch
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= test
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(EXTRAS)
export OMP_NUM_THREADS ?= 1
# On shared 2-core machines busy-waiting OpenMP threads slow torch down badly.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: install test demo lint format bench bench-soundfonts accuracy docs clean \
	gpu-wheels gpu-check gpu-rehearse

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: $(STAMP)
	OMP_NUM_THREADS=2 $(BIN)/rfcnn demo $(DEMO_ARGS)

# ruff comes from the lint extra, installed into .venv on first use (the same
# $(STAMP) rule, with EXTRAS=lint), so both work on a fresh clone.
lint:
	$(MAKE) install EXTRAS=lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format:
	$(MAKE) install EXTRAS=lint
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

# The accuracy benchmarks also test on other General-MIDI banks (Debian's).
bench-soundfonts:
	@if [ -f /usr/share/sounds/sf2/sf_GMbank.sf2 ]; then echo "csound SoundFont present"; \
	elif command -v apt-get >/dev/null; then \
		(apt-get install -y -q csound-soundfont fluid-soundfont-gm || \
		 (apt-get update -q && apt-get install -y -q csound-soundfont fluid-soundfont-gm)); \
	else echo "no apt-get: the benchmarks skip the other SoundFonts"; fi

# benchmarks/README.md: the paper's claims re-tested, v2 (about 7 h on 2 cores;
# resumable: a re-run skips the finished runs)
accuracy: $(STAMP) bench-soundfonts
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/accuracy.py --estimate
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/accuracy.py --jobs 2

# The documentation site, offline: installs the docs extra into .venv (the same
# $(STAMP) rule, with EXTRAS=docs), then builds with warnings as errors.  The
# gallery examples run at build time on 2 threads (a few minutes on 2 cores).
docs:
	$(MAKE) install EXTRAS=docs
	OMP_NUM_THREADS=2 MPLBACKEND=Agg $(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

# The GPU check (benchmarks/gpu_check.py): on a machine with one CUDA GPU it runs
# the `gpu` tests and the CUDA speed figures (about 6 min) into one JSON file;
# without CUDA it says so in one line.  It needs no .venv: on a GPU machine the
# python that holds torch runs it, and what it lacks is installed from
# $(GPU_WHEELS), which `make gpu-wheels` fills where pip reaches an index.
GPU_WHEELS ?= .gpu-wheels
GPU_PYTHON ?= $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON))
# a Python 3.12 for the dry-run install that checks the folder is complete
PYTHON312 ?= python3.12

gpu-wheels: $(STAMP)
	$(BIN)/python benchmarks/gpu_check.py --download-wheels $(GPU_WHEELS)
	@if $(PYTHON312) -c "" >/dev/null 2>&1; then \
		$(BIN)/python benchmarks/gpu_check.py --verify-wheels $(GPU_WHEELS) \
			--python $(PYTHON312); \
	else echo "no working $(PYTHON312) here: $(GPU_WHEELS) not dry-run installed"; fi

gpu-check:
	@$(GPU_PYTHON) benchmarks/gpu_check.py --wheels $(GPU_WHEELS) $(GPU_CHECK_ARGS)

# The check's dress rehearsal here, on the CPU: a fresh $(PYTHON312) environment
# holding what a GPU machine holds, at its versions (torch 2.11, numpy 2.5 ...),
# installs from $(GPU_WHEELS) without an index, as the machine will, and runs
# the dry run (downloads about 3 GB: torch 2.11's wheel is a CUDA build).
gpu-rehearse: $(STAMP)
	$(BIN)/python benchmarks/gpu_check.py --rehearse $(GPU_WHEELS) --python $(PYTHON312)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache rfcnn-demo-report
	rm -rf docs/_build docs/generated docs/auto_examples docs/sg_execution_times.rst docs/_hear_api.rst

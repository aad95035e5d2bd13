# Every command of the project. `make help` lists them.
SHELL := /bin/bash
PY := .venv/bin/python
HTTP_PORT ?= 8000
GRPC_PORT ?= 8001
METRICS_PORT ?= 8002
Q ?= How do I remove a specific item from an array in JavaScript?

.DEFAULT_GOAL := help
.PHONY: help setup demo build configs build-gpu build-cpu-container gpu-fetch gpu-check-cpu serve serve-fg stop status ask faq-release faq-versions faq-rollback test test-unit test-integration lint

help: ## list the commands
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

setup: ## install everything (Debian packages, .venv, .venv-tf, Azurite); idempotent
	bash scripts/setup.sh

demo: setup build ## main job: set up, build the repository, start Triton, answer real requests
	$(MAKE) --no-print-directory serve
	$(PY) -m faq.client --url localhost:$(HTTP_PORT) "$(Q)"
	$(PY) -m faq.client --url localhost:$(HTTP_PORT) "why does 0.1 + 0.2 not equal 0.3 in js"
	$(PY) -m imaging.client --model efficientnet_lite0 --url localhost:$(HTTP_PORT) --samples
	@echo "Triton keeps running on localhost:$(HTTP_PORT) (HTTP), $(GRPC_PORT) (gRPC), $(METRICS_PORT) (metrics); 'make stop' stops it."

build: ## export models (cached under build/) and render model_repository/ for the local CPU server
	$(PY) -m export.build_repository --target cpu

configs: ## write every rendered config.pbtxt (both targets) to deploy/configs/, committed for readers
	$(PY) -m serving configs

build-gpu: ## render the GPU variant (native onnxruntime + TensorRT) into build/model_repository_gpu/
	$(PY) -m export.build_repository --target gpu --repository build/model_repository_gpu

build-cpu-container: ## render the container's CPU variant (native onnxruntime on CPU) into build/model_repository_cpu_container/
	$(PY) -m export.build_repository --target cpu-container --repository build/model_repository_cpu_container

gpu-fetch: ## put what a GPU machine without Docker needs into .gpu/ (docs/perf.md, "GPU")
	bash scripts/gpu_check.sh --fetch

gpu-check-cpu: ## the GPU script end to end on the CPU, with a tiny network
	bash scripts/gpu_check.sh --cpu

serve: ## start Triton (supervised: restarted when it dies or fails the deep check) in the background
	$(PY) -m serving serve --detach --http-port $(HTTP_PORT) --grpc-port $(GRPC_PORT) --metrics-port $(METRICS_PORT)

serve-fg: ## start Triton in the foreground (Ctrl-C stops it)
	$(PY) -m serving serve --http-port $(HTTP_PORT) --grpc-port $(GRPC_PORT) --metrics-port $(METRICS_PORT)

stop: ## stop the background Triton server and its Python-backend stubs
	$(PY) -m serving stop

status: ## list the models of the running server and their state
	$(PY) -m serving status

ask: ## ask the FAQ model a question: make ask Q="how to clone an object"
	$(PY) -m faq.client --url localhost:$(HTTP_PORT) "$(Q)"

faq-release: ## train a new FAQ version (DATA=folder, default the shipped set); promoted under traffic if not worse
	$(PY) -m faq.release new $(if $(DATA),--data $(DATA))

faq-versions: ## the FAQ versions in model_repository/, which one serves, the last switches
	$(PY) -m faq.release list

faq-rollback: ## serve again the FAQ version that served before, under traffic
	$(PY) -m faq.release rollback

test: ## set up, then run the whole test suite (what CI runs)
	bash scripts/test.sh

test-unit: ## unit tests only
	bash scripts/test.sh tests/unit

test-integration: ## integration tests only (start a real Triton server)
	bash scripts/test.sh tests/integration

lint: ## ruff check and ruff format --check (what CI runs after the tests)
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

# --- image classification (docs/images.md) --------------------------------------------
MODEL ?= efficientnet_lite0
IMG ?=
.PHONY: classify classify-samples export-images trt-plans test-images
classify: ## classify files: make classify IMG="a.jpg b.png" MODEL=efficientnet_lite0
	$(PY) -m imaging.client --model $(MODEL) --url localhost:$(HTTP_PORT) $(IMG)

classify-samples: ## classify the packaged sample photos with every image ensemble
	for m in efficientnet_lite0 resnet152_pytorch resnet152_tensorflow; do \
	  $(PY) -m imaging.client --model $$m --url localhost:$(HTTP_PORT) --samples || exit 1; done

export-images: ## re-export the image networks (RESNET_WEIGHTS=path.pth, KERAS_WEIGHTS=imagenet|path)
	$(PY) -m export.resnet_torch $(if $(RESNET_WEIGHTS),--weights $(RESNET_WEIGHTS))
	.venv-tf/bin/python -m export.resnet_keras export $(if $(KERAS_WEIGHTS),--weights $(KERAS_WEIGHTS))
	$(PY) -m export.efficientnet

trt-plans: ## build TensorRT engines for the GPU repository (needs a GPU and TensorRT)
	$(PY) -m export.tensorrt_plans

test-images: ## image unit and integration tests
	bash scripts/test.sh tests/unit/imaging tests/integration/imaging

# --- batch scoring (docs/batch_scoring.md) --------------------------------------------
.PHONY: batch batch-azurite batch-aml-yaml batch-bench stream-services stream-bench test-batch
batch: ## generate the default sensor data, train per-series models, score them in parallel (local folder)
	$(PY) -m batch_scoring demo

batch-azurite: ## the same against Blob Storage (Azurite, started on demand)
	$(PY) -m batch_scoring demo --store azurite

batch-aml-yaml: ## write the Azure ML compute, parallel job and schedule YAML (dry run)
	$(PY) -m batch_scoring aml yaml

batch-bench: ## batch benchmark: 10,000 series x 1,440 readings (~12 min), writes perf/RESULTS.md
	$(PY) -m perf.batch.bench

stream-services: ## the local Kafka-protocol broker and PostgreSQL in the foreground (docs/streaming.md)
	$(PY) -m batch_scoring services

stream-bench: ## streaming benchmark: ingestion rate, one hour of 10,000 sensors scored (~8 min), writes perf/RESULTS.md
	$(PY) -m perf.batch.stream_bench --hours 6

test-batch: ## batch unit and integration tests
	bash scripts/test.sh tests/unit/batch_scoring tests/integration/batch_scoring

# --- real-time performance (docs/perf.md) ---------------------------------------------
.PHONY: perf perf-quick perf-tune perf-soak
perf: ## perf_analyzer + locust on every ensemble beside the azmlinfsrv baselines (~25 min); records in perf/results/<date>/
	$(PY) -m perf.run

perf-quick: ## the same stages, short (~4 min); records in perf/out/quick
	$(PY) -m perf.run --quick

TUNE_MODEL ?= faq_classifier
perf-tune: ## configuration sweep of one model with Triton Model Analyzer (TUNE_MODEL=...), in its own .venv-ma
	@[ -x .venv-ma/bin/model-analyzer ] || { python3.11 -m venv .venv-ma && .venv-ma/bin/pip install -q -r requirements/model-analyzer.lock; }
	$(PY) -m perf.tune $(TUNE_MODEL)

perf-soak: ## 30 min of mixed load on the served stack with a stall, kill or freeze every 4 min; records in perf/results/<date>/soak
	$(PY) -m perf.soak

# --- example web app (docs/webapp.md) --------------------------------------------------
WEBAPP_PORT ?= 8080
.PHONY: webapp
webapp: ## example web page on http://127.0.0.1:$(WEBAPP_PORT) for the running server (make serve first)
	$(PY) -m webapp --triton-url localhost:$(HTTP_PORT) --port $(WEBAPP_PORT)

# --- deployment (docs/deployment.md) ---------------------------------------------------
.PHONY: k8s-render aml-yaml deploy-check image
k8s-render: ## render the Kustomize overlays (gpu, cpu) and validate them into build/k8s/
	$(PY) -m deploy.k8s render --out build/k8s

aml-yaml: ## write the Azure ML endpoint/deployment/model YAML (dry run) into build/aml/
	$(PY) -m deploy.aml dry-run --out build/aml

deploy-check: build-gpu build-cpu-container ## check the container's repositories and Python dependencies
	$(PY) -m deploy.repository_check build/model_repository_gpu build/model_repository_cpu_container
	$(PY) -m deploy.container_deps check

image: ## build and push the container image to Azure Container Registry (needs Docker + az)
	bash deploy/build_push.sh

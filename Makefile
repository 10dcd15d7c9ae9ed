# The Makefile is the project's only interface: CI and the README call nothing else.
# Every target that needs Python depends on $(VENV_STAMP), so a fresh machine sets itself up
# on first use and a prepared one skips straight to the work.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.installed
# The dependency layer as it ships (requirements/lambda.lock, compiled bytecode): what the cold-start
# benchmark imports, instead of the dev virtualenv.
LAYER := .build/bench-layer
LAYER_STAMP := $(LAYER)/.installed
UV_VERSION := 0.13.8
# checkov pins a boto3 the services cannot use, so it lives in a virtualenv of its own.
CHECKOV_VENV := .build/tools/checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

PORT ?= 3000
STATE_DIR ?= .local
ALLOWED_ORIGINS ?=
SUB ?= demo-customer
GROUPS ?= customers
TTL ?= 3600
STAGE ?=
REGION ?=
ARCH ?= arm64
ALARM_EMAIL ?=
PARAMS ?=
DRY_RUN ?=
URL ?=
TOKEN ?=
HOST ?=
USERS ?= 50
DURATION ?= 2m
SCENARIO ?= mixed
BOOKINGS ?= 100000
MIX ?=
FROM ?=
TWELVE_MONTHS ?=
MAX_EXAMPLES ?= 300
EXPORT ?=
KEEP ?=

export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help venv run test lint fmt typecheck unit integration integration-stale smoke browser browser-test templates package checkov deploy-check deploy destroy load fuzz bench cfn-lint bench-smoke bench-transactions bench-slots bench-cold-start bench-capacity bench-handler-cpu bench-throughput bench-contention cost token audit-verify audit-redrive events-redrive backup backup-drill faults clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-20s\033[0m %s\n", $$1, $$2}'

$(VENV_STAMP): requirements/dev.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	@$(VENV)/bin/uv pip sync --quiet --python $(PY) requirements/dev.lock
	@touch $@

venv: $(VENV_STAMP) ## Create or update the virtualenv from the lock file

run: $(VENV_STAMP) ## Run the whole stack locally on emulated AWS (PORT=3000; ALLOWED_ORIGINS=https://…,… for CORS; WAF=off)
	@exec $(PY) -m local --state-dir $(STATE_DIR) run --port $(PORT) --allowed-origins "$(ALLOWED_ORIGINS)" $(if $(filter off,$(WAF)),--no-waf)

# The AWS calls every local function makes during `make test`, for tests/policy/ (which runs last).
CALL_LOG := .build/aws-calls.jsonl

# The services' own integration tests run once, with stale reads on (what DynamoDB may do): a test
# that passes when eventually consistent reads lag a second passes when they do not.
test: lint typecheck cfn-lint checkov bench-smoke browser $(VENV_STAMP) ## Every check: lint, types, templates, benchmarks' smoke runs, all tests (the services' with stale reads)
	@mkdir -p .build && rm -f $(CALL_LOG)
	APPOINTMENTS_AWS_CALL_LOG=$(abspath $(CALL_LOG)) $(PY) -m pytest tests/unit tests/integration tests/smoke tests/browser -q \
	  $(foreach t,$(SERVICE_TESTS),--ignore=$(t))
	APPOINTMENTS_AWS_CALL_LOG=$(abspath $(CALL_LOG)) APPOINTMENTS_STALE_READS_MS=1000 $(PY) -m pytest $(SERVICE_TESTS) tests/policy -q

unit: $(VENV_STAMP) ## Unit tests (no network: sockets other than Unix pipes are refused)
	$(PY) -m pytest tests/unit -q

integration: $(VENV_STAMP) ## Integration tests against emulated AWS and the local stack
	$(PY) -m pytest tests/integration -q

# The services' own integration tests, whose emulators answer every eventually consistent read with
# data STALE_READS_MS old (1000 unless given): what a read that does not ask for consistency may see
# on AWS, where DynamoDB promises no bound and an index usually lags by a fraction of a second.
SERVICE_TESTS = $(foreach t,booking_api booking_lifecycle booking_round_trips availability_api \
  availability_bad_input audit_events audit_trail audit_faults personal_data,tests/integration/test_$(t).py)
integration-stale: $(VENV_STAMP) ## The booking, availability and audit integration tests with eventually consistent reads STALE_READS_MS (1000) old, as make test runs them
	APPOINTMENTS_STALE_READS_MS=$(or $(STALE_READS_MS),1000) $(PY) -m pytest $(SERVICE_TESTS) -q

browser-test: browser $(VENV_STAMP) ## The ops console in headless chromium (screenshot in .artifacts/)
	$(PY) -m pytest tests/browser -q

# Debian's chromium and its chromedriver (the same build) for the browser tests; installed only when missing.
browser: ## Install chromium and chromium-driver from apt when missing (root, or sudo)
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; else \
	  echo "The browser tests need Debian's chromium and chromium-driver: apt-get install chromium chromium-driver" >&2; exit 1; fi; \
	echo "Installing chromium and chromium-driver (apt) for the browser tests…"; \
	$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium chromium-driver >/dev/null

smoke: $(VENV_STAMP) ## End-to-end: 'make run' as a subprocess; with URL=… TOKEN=…, an authenticated flow against a deployed stage
ifeq ($(URL),)
	$(PY) -m pytest tests/smoke -q
else
	@echo "pytest tests/e2e against $(URL)"
	@APPOINTMENTS_URL="$(URL)" APPOINTMENTS_TOKEN="$(TOKEN)" $(PY) -m pytest tests/e2e -q -m e2e
endif

lint: $(VENV_STAMP) ## ruff lint and format check; the import layering (import-linter, contracts in pyproject.toml)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache --no-logo

fmt: $(VENV_STAMP) ## Format and auto-fix with ruff
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: $(VENV_STAMP) ## mypy over services/, deploy/, local/, tests/ and loadtests/
	$(VENV)/bin/mypy

cfn-lint: templates ## Lint the CloudFormation templates, as written and as packaged
	$(VENV)/bin/cfn-lint cloudformation/*.yaml cloudformation/alarms/*.yaml
	$(VENV)/bin/cfn-lint .build/cloudformation/*.yaml .build/cloudformation/alarms/*.yaml

checkov: templates $(CHECKOV_STAMP) ## Policy checks (checkov, offline) of the packaged templates; parse errors fail
	CKV_PARSE_ERROR_FAIL=true $(CHECKOV_VENV)/bin/checkov --config-file .checkov.yaml --directory .build/cloudformation

$(CHECKOV_STAMP): requirements/checkov.lock $(VENV_STAMP)
	@rm -rf $(CHECKOV_VENV)
	@$(VENV)/bin/uv venv --quiet --python $(PY) $(CHECKOV_VENV)
	@$(VENV)/bin/uv pip sync --quiet --python $(CHECKOV_VENV)/bin/python requirements/checkov.lock
	@touch $@

templates: $(VENV_STAMP) ## Build the deployable templates and functions under .build/ (no dependency layer)
	@$(PY) -m deploy package --no-layer --architecture $(ARCH)

package: $(VENV_STAMP) ## Build everything make deploy ships under .build/: templates, functions, the layer (ARCH=arm64|x86_64)
	$(PY) -m deploy package --architecture $(ARCH)

deploy-check: $(VENV_STAMP) ## AWS's deploy-time rules on the packaged templates (deploy/checks.py), each shown failing on a template that breaks it
	$(PY) -m pytest tests/unit/test_deploy_check.py -q

deploy: $(VENV_STAMP) ## Deploy a stage: make deploy STAGE=dev [REGION=…] [ALARM_EMAIL=…] [ARCH=…] [PARAMS="K=V …"]; DRY_RUN=1 builds and checks only
ifeq ($(DRY_RUN),1)
	@$(MAKE) --no-print-directory package cfn-lint checkov ARCH=$(ARCH)
	@$(PY) -m deploy check
	@echo "Dry run: built .build/ (templates, functions, layer for $(ARCH)) and checked the templates; nothing was deployed."
else
	@test -n "$(STAGE)" || { echo "STAGE is required: make deploy STAGE=dev" >&2; exit 2; }
	@$(PY) -m deploy deploy --stage $(STAGE) --region "$(REGION)" --architecture $(ARCH) \
	  $(if $(ALARM_EMAIL),--parameter AlarmEmail=$(ALARM_EMAIL)) $(foreach p,$(PARAMS),--parameter $(p))
endif

destroy: $(VENV_STAMP) ## Delete a stage's stack: make destroy STAGE=dev [REGION=…] (the table, bucket and user pool are kept)
	@test -n "$(STAGE)" || { echo "STAGE is required: make destroy STAGE=dev" >&2; exit 2; }
	@$(PY) -m deploy destroy --stage $(STAGE) --region "$(REGION)"

bench-transactions: $(VENV_STAMP) ## Measure a 10-item TransactWriteItems at 0 and 20,000 items (COMPARE=1 adds unpatched moto)
	$(PY) -m loadtests.bench_transactions $(if $(COMPARE),--compare,)

bench-slots: $(VENV_STAMP) ## CPU cost of one slot search with its parsing, 62 days × 500 bookings (goal under 10 ms), and its growth to 10,000 bookings
	$(PY) -m loadtests.bench_slots

bench-capacity: $(VENV_STAMP) ## DynamoDB requests and capacity units per API operation, metered on a local stack of its own
	$(PY) -m loadtests.bench_capacity

bench-handler-cpu: $(VENV_STAMP) ## CPU per request of each function with storage faked, vs a trivial Powertools route
	$(PY) -m loadtests.bench_handler_cpu

bench-throughput: $(VENV_STAMP) ## Bookings/s through the local stack vs the same DynamoDB requests sent straight to the emulator
	$(PY) -m loadtests.bench_throughput

bench-contention: $(VENV_STAMP) ## Bookings of different times of one day at once vs spread over days: median latency ratio (goal ≤ 1.5)
	$(PY) -m loadtests.bench_contention

cost: $(VENV_STAMP) $(LAYER_STAMP) ## USD a month and per million bookings: BOOKINGS=100000 MIX="op=calls,…" ARCH=arm64 TWELVE_MONTHS=1 FROM=<bench results.json>
	$(PY) -m loadtests.cost --bookings $(BOOKINGS) --architecture $(ARCH) $(if $(MIX),--mix "$(MIX)") \
	  $(if $(TWELVE_MONTHS),--twelve-months) $(if $(FROM),--from $(FROM))

bench-cold-start: $(VENV_STAMP) $(LAYER_STAMP) ## Each function's init + first request vs import boto3, a client and the same AWS calls (goal ≤ 1.5×)
	$(PY) -m loadtests.bench_cold_start

bench-smoke: $(VENV_STAMP) $(LAYER_STAMP) ## Run every benchmark at tiny sizes, without verdicts, so the scripts never rot
	$(PY) -m loadtests.bench_transactions --quick
	$(PY) -m loadtests.bench_slots --quick
	$(PY) -m loadtests.bench --quick --out .build/bench-smoke
	$(PY) -m loadtests.cost --from .build/bench-smoke/results.json

bench: $(VENV_STAMP) $(LAYER_STAMP) ## The performance goals as numbers: JSON, markdown and PNG plots in loadtests/reports/bench-<timestamp>/
	$(PY) -m loadtests.bench

# Built for the functions' runtime (Python 3.13) when an interpreter of that version is here, as
# deploy/package.py finds it; `.python` names the interpreter the benchmark then runs.
$(LAYER_STAMP): requirements/lambda.lock $(VENV_STAMP)
	@rm -rf $(LAYER)
	@runtime="$$($(PY) -c 'from deploy.package import lambda_python; print(lambda_python() or "")')"; \
	  if [ -z "$$runtime" ]; then runtime="$(PY)"; echo "no Lambda runtime Python here: the cold-start benchmark runs on $$($(PY) -V)"; fi; \
	  $(VENV)/bin/uv pip install --quiet --target $(LAYER) --python "$$runtime" --compile-bytecode --require-hashes -r requirements/lambda.lock && \
	  echo "$$runtime" > $(LAYER)/.python
	@touch $@

load: $(VENV_STAMP) ## Locust on the local stack, or HOST=…: USERS=50 DURATION=2m SCENARIO=mixed|contention; then the invariants
	$(PY) -m loadtests.load --users $(USERS) --duration $(DURATION) --scenario $(SCENARIO) $(if $(HOST),--host $(HOST))

# Not in make test (about 30 minutes); make test runs the same briefly (tests/integration/test_openapi_fuzz.py).
fuzz: $(VENV_STAMP) ## schemathesis at volume on a local stack of its own: ≥ 10,000 cases, every operation, stateful links, all checks; report in .build/fuzz/<timestamp>/ (MAX_EXAMPLES=300)
	$(PY) -m tests.fuzz --max-examples $(MAX_EXAMPLES)

token: $(VENV_STAMP) ## Mint a local development token: make token SUB=… GROUPS=customers,providers
	@$(PY) -m local --state-dir $(STATE_DIR) token --sub "$(SUB)" --groups "$(GROUPS)" --ttl $(TTL) --port $(PORT)

faults: $(VENV_STAMP) ## Inject faults into the running local stack (PORT): DYNAMODB_THROTTLE=0.5 DYNAMODB_ERROR= DYNAMODB_DELAY_MS= ARCHIVE_ERROR= STALE_READS_MS= EVENTS_PUT_FAILURE= (none: clear)
	@$(PY) -m local faults --port $(PORT) --dynamodb-throttle $(or $(DYNAMODB_THROTTLE),0) --dynamodb-error $(or $(DYNAMODB_ERROR),0) --dynamodb-delay-ms $(or $(DYNAMODB_DELAY_MS),0) --archive-error $(or $(ARCHIVE_ERROR),0) --stale-reads-ms $(or $(STALE_READS_MS),0) --events-put-failure $(or $(EVENTS_PUT_FAILURE),0)

audit-verify: $(VENV_STAMP) ## Verify the audit archive's hash chains against the history (the running local stack; or TABLE=<stage's audit table> BUCKET=…)
	$(PY) -m services.audit.verify $(if $(TABLE),--table $(TABLE) --bucket $(BUCKET),--local-stack http://127.0.0.1:$(PORT))

audit-redrive: $(VENV_STAMP) ## Give the audit consumer's dead-lettered stream ranges to it again, while the stream has them (the running local stack; or QUEUE_URL=… FUNCTION=…)
	$(PY) -m services.audit.redrive $(if $(QUEUE_URL),--queue-url $(QUEUE_URL) --function $(FUNCTION),--local-stack http://127.0.0.1:$(PORT))

events-redrive: $(VENV_STAMP) ## Give the domain events' publisher its dead-lettered stream ranges again, while the stream has them (the running local stack; or QUEUE_URL=… FUNCTION=…)
	$(PY) -m services.audit.redrive $(if $(QUEUE_URL),--queue-url $(QUEUE_URL) --function $(FUNCTION),--local-stack http://127.0.0.1:$(PORT) --consumer publisher)

backup: $(VENV_STAMP) ## Export both tables to the backup bucket now (the running local stack; or STAGE=… [REGION=…])
	$(PY) -m services.audit.backup export $(if $(STAGE),--stage $(STAGE) $(if $(REGION),--region $(REGION)),--local-stack http://127.0.0.1:$(PORT))

backup-drill: $(VENV_STAMP) ## Export, restore into new tables, check files, counts, every item and the audit chains; one line (local stack, or STAGE=…; EXPORT="<arn> <arn>" drills those; KEEP=1)
	$(PY) -m services.audit.backup drill $(if $(STAGE),--stage $(STAGE) $(if $(REGION),--region $(REGION)),--local-stack http://127.0.0.1:$(PORT)) \
	  $(foreach e,$(EXPORT),--export $(e)) $(if $(KEEP),--keep)

clean: ## Remove the virtualenv, local state and caches
	rm -rf $(VENV) .local .artifacts .build .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

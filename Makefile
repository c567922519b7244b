# exactly-once-bench. `make` alone lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

EOB := node bin/eob.js
# npm writes node_modules/.package-lock.json on every install: newer than the lock file means up to date.
STAMP := node_modules/.package-lock.json
# What the targets need installed first. NO_INSTALL=1 takes node_modules as it is: a shared install other
# checkouts link to, which an npm ci would delete and rebuild under them (the docs' command test sets it).
NEEDS := $(if $(NO_INSTALL),,$(STAMP))

# Optional overrides, passed on only when given: make bench PROFILE=quick BATCH_SIZES=1,100,1000
opt = $(if $($(1)),--$(2) '$($(1))')
BENCH_FLAGS = $(call opt,PROFILE,profile) $(call opt,BATCH_SIZES,batch-sizes) $(call opt,ISOLATION,isolation) \
  $(call opt,MODES,modes) $(call opt,QUEUE_WORKERS,queue-workers) $(call opt,HANDLERS,handlers) \
  $(call opt,POLL_INTERVALS,poll-intervals) $(call opt,COALESCE,coalesce) $(call opt,ACK_MODES,ack-modes) \
  $(call opt,REPETITIONS,repetitions) $(call opt,DURATION,duration-s) $(call opt,BACKLOG,backlog) \
  $(call opt,CONNECTIONS,connections) $(call opt,RATE,rate) $(call opt,ONLY,only) $(call opt,ENGINE,engine) \
  $(call opt,PEERS,peers) $(call opt,TOPOLOGY,topology) $(call opt,REPLICATION,replication)
CHAOS_FLAGS = $(call opt,ENGINE,engine) $(call opt,PROFILE,profile) $(call opt,FAULTS,faults) $(call opt,BACKEND,backend) \
  $(call opt,CASES,cases) $(call opt,REQUESTS,requests) $(call opt,TOPOLOGY,topology) $(call opt,SEED,seed) $(call opt,RUNS,runs) \
  $(call opt,REPLICATION,replication)

.PHONY: help install test bench chaos micro db demo typecheck clean docker-images test-docker wrk docs-figures docs-run

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'
	@echo "  bench variables: PROFILE (quick|standard|full), BATCH_SIZES, ISOLATION, MODES, QUEUE_WORKERS, HANDLERS,"
	@echo "                   POLL_INTERVALS, COALESCE, ACK_MODES, REPETITIONS, DURATION, BACKLOG, CONNECTIONS, RATE, ONLY, TOPOLOGY (single|galera|primary-replica),"
	@echo "                   PEERS (peer:task pairs beside the PostgreSQL drain, e.g. graphile-worker:counter,pg-boss:noop)"
	@echo "  chaos variables: PROFILE (quick|standard|soak), FAULTS, BACKEND (local|docker), CASES, REQUESTS, TOPOLOGY (single|galera|primary-replica),"
	@echo "                   SEED (the fault schedules' seed), RUNS (PROFILE=soak: this many random schedules)"
	@echo "  REPLICATION (async|semi-sync|sync) with TOPOLOGY=primary-replica: bench and chaos only that level, db its level"
	@echo "  ENGINE (mariadb|postgres|all) for bench and chaos, mariadb|postgres for db; default mariadb"
	@echo "  DATABASE_URL=mysql://... or postgres://... (or MYSQL_URL) uses your server instead of a private one"
	@echo "  NO_INSTALL=1 uses node_modules as it is (no npm ci when package-lock.json is newer)"

$(STAMP): package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

install: $(STAMP) ## install the npm dependencies (the other targets do it when needed)

test: $(NEEDS) ## run the test suite (unit + integration against private MariaDB and PostgreSQL servers it starts itself)
	npm test

bench: $(NEEDS) ## throughput sweep: drain and end-to-end msgs/s vs the 154 msg/s baseline -> results/bench/latest
	$(EOB) bench $(BENCH_FLAGS)

chaos: $(NEEDS) ## fault injection + checker: proves exactly-once, catches the controls -> results/chaos/latest
	$(EOB) chaos $(CHAOS_FLAGS)

demo: $(NEEDS) ## walk-through: private MariaDB + server + worker, requests, a worker SIGKILL, the exact count, next steps
	bash scripts/demo.sh

micro: $(NEEDS) ## tinybench per-operation costs (publish, consume at batch 1/100/1000, HTTP round trip) -> results/micro
	$(EOB) micro

wrk: $(NEEDS) ## end to end under wrk (64 connections, or CONNECTIONS=N; FLOOR=1 adds a bare-socket answerer) against eob server + worker defaults, with a plain 204 server and POST /noop in the same run; CPU per message; fails unless every message is counted
	@command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }
	node --import tsx scripts/e2eCpu.ts --client wrk --reps $(or $(REPETITIONS),1) $(if $(DURATION),--seconds $(DURATION)) $(if $(CONNECTIONS),--connections $(CONNECTIONS)) $(if $(FLOOR),--floor)

db: $(NEEDS) ## start a private MariaDB (ENGINE=postgres: PostgreSQL; TOPOLOGY=galera: a 3-node Galera cluster; TOPOLOGY=primary-replica: a primary and a replica, REPLICATION=level) in the foreground and print its DATABASE_URL (Ctrl-C stops it)
	$(EOB) db start $(call opt,ENGINE,engine) $(if $(PORT),--port $(PORT)) $(call opt,TOPOLOGY,topology) $(if $(CLUSTER),--topology $(CLUSTER)) $(call opt,NODES,nodes) $(call opt,REPLICATION,replication)

docker-images: $(NEEDS) ## build the local images (Debian base via debootstrap, MariaDB, eob) with no registry; cached by input hash
	docker/build-images.sh

test-docker: $(NEEDS) ## private dockerd + images + real-engine tests + quick docker chaos (installs nothing; .ci/run does with EOB_DOCKER=1)
	docker/test-docker.sh

docs-run: $(NEEDS) ## save results/bench/latest and results/chaos/latest as the named run docs/results/NAME (NAME=..., LOAD="the load average"), then cite it: make docs-figures RUN=NAME
	@test -n "$(NAME)" || { echo "make docs-run needs NAME=<run name>"; exit 1; }
	node --import tsx scripts/docsFigures.ts --save '$(NAME)' $(if $(LOAD),--load '$(LOAD)')

docs-figures: $(NEEDS) ## rebuild the generated tables of README.md and docs/ from the named run each cites in docs/results/ (RUN=<name>: cite that run instead)
	node --import tsx scripts/docsFigures.ts $(if $(RUN),--cite '$(RUN)')

typecheck: $(NEEDS) ## strict TypeScript check of src/ and test/
	npx tsc --noEmit -p .

clean: ## remove results/ and the private databases' data under .eob/
	rm -rf results .eob

# The two set-up commands of the README. Both install what they need on a fresh Debian machine.
.PHONY: deps demo test bench build

deps:
	@bash scripts/install-deps.sh

build: deps
	swift build -c release --product tiller
	swift build -c release --product tiller-bench

# The main job: what Tiller sees on this machine, then a short throughput run.
demo: build
	.build/release/tiller info
	.build/release/tiller-bench --quick

# The full benchmark, as recorded in docs/performance.md.
bench: build
	.build/release/tiller-bench

test: deps
	swift test

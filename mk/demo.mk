# mk/demo.mk — the README's first command: the whole job on vet's own synthetic notes.
#
#   make demo        synthetic notes -> tokenizer -> tokenize -> pack -> train a tiny model from
#                    scratch on the CPU -> generate on the held-out test split -> vet-eval's table
#   make demo-lora   a small base trained on cattle and buffalo, then a LoRA adapter for sheep and
#                    goats: accuracy on the sheep/goat test split before and after the adapter
# Outputs stay in out/demo and out/demo-lora (every intermediate file; see pipelines/vet.mk).

DEMO_OUT ?= out/demo
DEMO_PIPE = $(MAKE) --no-print-directory -f pipelines/vet.mk VET_BIN=$(abspath $(BIN))

.PHONY: demo demo-lora
demo: all $(DATA_OUT)/notes.csv
	$(DEMO_PIPE) OUT=$(DEMO_OUT) NOTES=$(DATA_OUT)/notes.csv INIT=tiny CODES=data/codes.tsv
	@echo "demo: every intermediate file is in $(DEMO_OUT)/ (metrics: $(DEMO_OUT)/metrics.json)"

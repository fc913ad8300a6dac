# mk/demo.mk — the README's first command: the whole job on vet's own synthetic notes.
#
#   make demo        synthetic notes -> tokenizer -> tokenize -> pack -> train a tiny model from
#                    scratch on the CPU -> generate on the held-out test split -> vet-eval's table
#   make demo-lora   a small base trained on cattle and buffalo, then a LoRA adapter for sheep and
#                    goats: accuracy on the sheep/goat test split before and after the adapter
# Outputs stay in out/demo and out/demo-lora (every intermediate file; see pipelines/vet.mk).

DEMO_OUT ?= out/demo
DEMO_PIPE = $(MAKE) --no-print-directory -f pipelines/vet.mk VET_BIN=$(abspath $(BIN))

# One model codes the demo's test split (ENSEMBLE=1): three refits would take the demo past its
# ten minutes on two cores. `make demo DEMO_ENSEMBLE=3` runs the DLO default.
DEMO_ENSEMBLE ?= 1
.PHONY: demo demo-lora
demo: all $(DATA_OUT)/notes.csv
	@mkdir -p $(DEMO_OUT) && date +%s >$(DEMO_OUT)/.started
	$(DEMO_PIPE) OUT=$(DEMO_OUT) NOTES=$(DATA_OUT)/notes.csv INIT=tiny CODES=data/codes.tsv ENSEMBLE=$(DEMO_ENSEMBLE)
	@echo "demo: every intermediate file is in $(DEMO_OUT)/ (metrics: $(DEMO_OUT)/metrics.json)"
	@sh mk/demo_summary.sh $(DEMO_OUT)

# demo-lora: the base knows cattle and buffalo only; a LoRA adapter teaches it sheep and goats.
# The base is the pipeline's final model (base/refit: trained on the cattle notes' train and val
# splits; one model, ENSEMBLE=1, since an adapter adapts one base); the adapter's run is
# FIT=train, as every run with BASE.
DEMO_LORA_OUT ?= out/demo-lora
DEMO_LORA_TRAIN ?= --lora-r 16 --lora-alpha 32 --lora-dropout 0.05 --lora-targets all --epochs 8 \
                   --lr 3e-3 --batch-size 4 --grad-accum 1 --warmup-ratio 0.05 -q
demo-lora: all $(DATA_OUT)/tokenizer.model
	@mkdir -p $(DEMO_LORA_OUT)
	$(BIN)/vet-synth --diseases data/diseases.tsv --species Cow,Buffalo -n 1500 --seed 11 -o $(DEMO_LORA_OUT)/cattle.csv
	$(BIN)/vet-synth --diseases data/diseases.tsv --species Sheep,Goat -n 800 --seed 12 -o $(DEMO_LORA_OUT)/small-ruminants.csv
	$(DEMO_PIPE) OUT=$(DEMO_LORA_OUT)/base NOTES=$(DEMO_LORA_OUT)/cattle.csv INIT=tiny FIT=train+val ENSEMBLE=1 \
	  SPM=$(DATA_OUT)/tokenizer.model CODES=data/codes.tsv GEN_ARGS="--batch 16 -q" >$(DEMO_LORA_OUT)/base.log
	$(DEMO_PIPE) OUT=$(DEMO_LORA_OUT)/adapted NOTES=$(DEMO_LORA_OUT)/small-ruminants.csv \
	  BASE=$(DEMO_LORA_OUT)/base/refit CODES=data/codes.tsv TRAIN_ARGS="$(DEMO_LORA_TRAIN)" \
	  GEN_ARGS="--batch 16 -q" >$(DEMO_LORA_OUT)/adapted.log
	@# The base alone on the same sheep/goat test notes: the "before" figure.
	$(BIN)/vet-generate -q --model $(DEMO_LORA_OUT)/base/refit --codes data/codes.tsv --batch 16 \
	  $(DEMO_LORA_OUT)/adapted/rows/test.msgpack.zst -o $(DEMO_LORA_OUT)/before.msgpack.zst
	$(BIN)/vet-eval -q --codes data/codes.tsv --bootstrap 1000 --json $(DEMO_LORA_OUT)/before.json \
	  $(DEMO_LORA_OUT)/before.msgpack.zst
	@printf '\ndemo-lora: cattle+buffalo base -> sheep+goat LoRA adapter, on the sheep/goat test split\n'
	@printf '  base model on cattle/buffalo test:    accuracy %s\n' "$$(jq -r '.accuracy*1000|round/1000' $(DEMO_LORA_OUT)/base/metrics.json)"
	@printf '  sheep/goat test, before the adapter:  accuracy %s\n' "$$(jq -r '.accuracy*1000|round/1000' $(DEMO_LORA_OUT)/before.json)"
	@printf '  sheep/goat test, with the adapter:    accuracy %s  (majority baseline %s)\n' \
	  "$$(jq -r '.accuracy*1000|round/1000' $(DEMO_LORA_OUT)/adapted/metrics.json)" \
	  "$$(jq -r '.baseline.accuracy*1000|round/1000' $(DEMO_LORA_OUT)/adapted/metrics.json)"

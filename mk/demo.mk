# mk/demo.mk — the README's first command: the whole job on vet's own synthetic notes.
#
#   make demo        synthetic notes -> tokenizer -> tokenize -> pack -> train a tiny model from
#                    scratch on the CPU -> generate on the held-out test split -> vet-eval's table
#   make demo-lora   a small base trained on cattle and buffalo, then a LoRA adapter for sheep and
#                    goats: accuracy on the sheep/goat test split before and after the adapter
# Outputs stay in out/demo and out/demo-lora (every intermediate file; see pipelines/vet.mk).

DEMO_OUT ?= out/demo
DEMO_PIPE = $(MAKE) --no-print-directory -f pipelines/vet.mk VET_BIN=$(abspath $(BIN))

# The demo's budget is five minutes once built on a 2-core AVX2-only machine (issue 23), so it
# trains less than the DLO defaults of pipelines/vet.mk, chosen on the validation split of the
# synthetic notes (docs/results.md, "make demo on AVX2"): one model codes the test split
# (ENSEMBLE=1, three refits would triple the time); no species-swapped copies (SWAP=, they
# double the rows and did not help on these notes); 8 epochs instead of 15 (the same settings
# otherwise). Together about 0.28 of the DLO default's training work, with validation accuracy
# 0.86 against the default's 0.815. `make demo DEMO_ENSEMBLE=3 DEMO_SWAP=Cow=Buffalo,Sheep=Goat
# DEMO_EPOCHS=15` runs the DLO defaults.
DEMO_ENSEMBLE ?= 1
DEMO_SWAP     ?=
DEMO_EPOCHS   ?= 8
# The test split is coded by scoring every code (RANK, vet-generate --rank: the same accuracy
# here as greedy constrained decoding, ~3 s more), so the report can say how sure the model is.
DEMO_RANK     ?= 3
DEMO_TRAIN_ARGS ?= --epochs $(DEMO_EPOCHS) --lr 3e-3 --batch-size 4 --grad-accum 2 --warmup-ratio 0.05 \
                   --weight-decay 0.1 --resid-dropout 0.2
# Then the trained model codes a clinic's new notes, written for the demo without codes
# (pipelines/vet.mk's code stage): DEMO_OUT/coded.csv, and the summary lists them.
DEMO_NEW      ?= data/new-notes.csv
.PHONY: demo demo-lora
# OpenMP threads spin only briefly at a barrier before they sleep (libgomp spins 300,000 rounds
# by default): beside one other busy process, long spins starve the thread holding the work
# (the demo's training at 2 threads: 25k tokens/s alone, 3.5k-7.9k with a competitor), while
# sleeping at once (OMP_WAIT_POLICY=passive) costs 13% alone; 10,000 rounds kept 99% alone and
# 10.7k-17.3k with a competitor (docs/results.md, issue 23). The environment's setting wins.
demo: export GOMP_SPINCOUNT ?= 10000
demo: all $(DATA_OUT)/notes.csv
	@mkdir -p $(DEMO_OUT) && date +%s >$(DEMO_OUT)/.started
	$(DEMO_PIPE) OUT=$(DEMO_OUT) NOTES=$(DATA_OUT)/notes.csv INIT=tiny CODES=data/codes.tsv ENSEMBLE=$(DEMO_ENSEMBLE) \
	  SWAP="$(DEMO_SWAP)" TRAIN_ARGS="$(DEMO_TRAIN_ARGS)" RANK=$(DEMO_RANK) eval $(if $(DEMO_NEW),code NEW=$(DEMO_NEW))
	@echo "demo: every intermediate file is in $(DEMO_OUT)/ (metrics: $(DEMO_OUT)/metrics.json)"
	@sh mk/demo_summary.sh $(DEMO_OUT) $(BIN) data/codes.tsv

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

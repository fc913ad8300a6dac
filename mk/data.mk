# mk/data.mk — the project's own data: the synthetic demo notes and the project's tokenizer.
#
#   make data          build/data/notes.csv: the demo data set (vet-synth, N=2000, seed 1)
#   make tokenizer     build/data/tokenizer.model: a SentencePiece BPE model trained on the
#                      demo notes rendered in the Alpaca prompt template (VOCAB=1024)
#
# Knobs: SYNTH_N, SYNTH_SEED, SYNTH_NOISE, SYNTH_DUP (vet-synth's -n --seed --noise --dup),
# VOCAB (tokenizer vocabulary size), DATA_OUT (output folder, default build/data),
# VET_SYNTH (the vet-synth program to run). docs/data.md explains the choices.

DATA_OUT    ?= build/data
SYNTH_N     ?= 2000
SYNTH_SEED  ?= 1
SYNTH_NOISE ?= 0.05
SYNTH_DUP   ?= 0.2
VOCAB       ?= 1024
VET_SYNTH   ?= $(BIN)/vet-synth
SPM_TRAIN   ?= spm_train

SYNTH_FLAGS := --diseases data/diseases.tsv -n $(SYNTH_N) --seed $(SYNTH_SEED) \
               --noise $(SYNTH_NOISE) --dup $(SYNTH_DUP)

# LLaMA's tokenizer settings, as far as spm_train takes them: BPE with byte fallback (no
# character is ever unknown), digits split one by one, no normalisation, whitespace kept as
# it is, a dummy prefix space; unk 0, bos 1, eos 2 and no pad piece (pad_id -1, as LLaMA).
# spm_train stores the thread count in the model: a fixed --num_threads (and every sentence
# read in order) makes the model the same bytes on every machine.
SPM_FLAGS := --model_type=bpe --vocab_size=$(VOCAB) --character_coverage=1.0 \
             --byte_fallback=true --split_digits=true --allow_whitespace_only_pieces=true \
             --remove_extra_whitespaces=false --normalization_rule_name=identity \
             --add_dummy_prefix=true --split_by_unicode_script=true --split_by_number=true \
             --split_by_whitespace=true --treat_whitespace_as_suffix=false \
             --max_sentencepiece_length=16 --max_sentence_length=4192 \
             --unk_id=0 --bos_id=1 --eos_id=2 --pad_id=-1 \
             --input_sentence_size=0 --shuffle_input_sentence=false --num_threads=1 \
             --minloglevel=1

.PHONY: data tokenizer install-data
data: $(DATA_OUT)/notes.csv
tokenizer: $(DATA_OUT)/tokenizer.model

$(DATA_OUT)/notes.csv: $(VET_SYNTH) data/diseases.tsv
	@mkdir -p $(@D)
	$(VET_SYNTH) $(SYNTH_FLAGS) -o $@

# The tokenizer's training text: the same notes, each as a full Alpaca prompt plus response,
# so the template's words and the codes' digits are in the vocabulary.
$(DATA_OUT)/alpaca.txt: $(VET_SYNTH) data/diseases.tsv
	@mkdir -p $(@D)
	$(VET_SYNTH) $(SYNTH_FLAGS) --alpaca-text -o $@

# spm_train stores its input and output paths in the model; training inside a scratch
# folder with relative names keeps the model the same bytes wherever DATA_OUT is.
$(DATA_OUT)/tokenizer.model: $(DATA_OUT)/alpaca.txt
	@rm -rf $(DATA_OUT)/spm.tmp && mkdir -p $(DATA_OUT)/spm.tmp
	cd $(DATA_OUT)/spm.tmp && $(SPM_TRAIN) --input=../alpaca.txt --model_prefix=tokenizer $(SPM_FLAGS) 2>log \
	  || { tail -n 20 log >&2; exit 1; }
	mv $(DATA_OUT)/spm.tmp/tokenizer.vocab $(DATA_OUT)/tokenizer.vocab
	mv $(DATA_OUT)/spm.tmp/tokenizer.model $@
	@rm -rf $(DATA_OUT)/spm.tmp

# `make install` also installs the table vet-synth reads by default (bin/../share/vet).
install: install-data
install-data:
	install -d $(DESTDIR)$(PREFIX)/share/vet
	install -m 644 data/diseases.tsv data/codes.tsv $(DESTDIR)$(PREFIX)/share/vet/

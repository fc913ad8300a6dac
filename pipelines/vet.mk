# pipelines/vet.mk — the whole vet job as make targets, one file per stage.
#
#   make -f pipelines/vet.mk OUT=DIR NOTES=notes.csv [BASE=hf-model-dir | INIT=tiny] \
#        [TOKENIZER=tokenizer.model|tokenizer.json|dir (SPM= is the same)] [CODES=codes.tsv]
#        [TRAIN_ARGS=...] [GEN_ARGS=...] [TRAIN_SEED=N]
#        [FIT=train+val|train] [SWAP=A=B,C=D | SWAP=] [CONSTRAIN=codes.tsv | CONSTRAIN=]
#        [ENSEMBLE=K] [RANK=K [CALIBRATE=1] [REFER=ACC]]
#   make -f pipelines/vet.mk OUT=DIR TRAIN=a.csv VAL=b.csv TEST=c.csv ...   (a given split)
#   make -f pipelines/vet.mk OUT=DIR pack          (one stage: tokenizer tokenize pack train
#                                                   refit temperature threshold generate eval val report)
#   make -f pipelines/vet.mk OUT=DIR NOTES=notes.csv ... cv FOLDS=K   (K-fold cross-validation:
#                                                   the job once per fold into OUT/fold-I, each
#                                                   fold's test split coded by a model that never
#                                                   saw it; the K pooled: OUT/cv-metrics.{json,txt})
#   make -f pipelines/vet.mk OUT=DIR ... code NEW=new.csv [CODED=file.csv]
#                                                  (new notes coded by the trained model: the same
#                                                   settings as the run that trained it)
#
# Stages and the files they leave in OUT:
#   tokenizer  OUT/tokenizer.model          only without TOKENIZER and BASE: trained on the training notes
#   tokenize   OUT/notes.tok.msgpack.zst    (NOTES) or OUT/{train,val,test}.tok.msgpack.zst, with
#                                           the species-swapped copies of SWAP after their notes
#   pack       OUT/packed/{train,val,test}.msgpack.zst   packed rows, grouped, stratified 80/10/10 split
#              (with SWAP, train holds its notes' copies too: refit trains on train's copies)
#              OUT/rows/test.msgpack.zst    the test split one sample per row (for generation)
#   train      OUT/model/                   PEFT adapter (BASE) or HF model (INIT) trained on the
#                                           train split, validation loss on val; OUT/train.done
#   refit      OUT/refit/                   only with FIT=train+val: the same training on train
#                                           and val together, the model the test split is scored
#                                           with (settings are chosen on val with OUT/model);
#              OUT/refit-2/ ... OUT/refit-K/  with ENSEMBLE=K (3 from scratch), K-1 more such
#                                           runs with other seeds: the K decode as one
#   generate   OUT/predictions.msgpack.zst  the test split's generated diagnoses (by OUT/refit
#                                           and its ENSEMBLE members with FIT=train+val, else by
#                                           OUT/model; only labels of CONSTRAIN, which is CODES
#                                           from scratch)
#   temperature OUT/temperature.txt         only with CALIBRATE=1: the temperature that calibrates
#                                           RANK's probabilities, fitted on the validation split
#                                           ranked whole by OUT/model (OUT/val-ranked.msgpack.zst)
#   threshold  OUT/threshold.txt            only with REFER=ACC: the lowest top-1 p at which the
#                                           validation notes (ranked as for temperature) are coded
#                                           at accuracy ACC; eval then refers the test notes below it
#   eval       OUT/metrics.json, OUT/metrics.txt   (vet-eval's JSON and table)
#   val        OUT/val-metrics.json          the validation split scored by OUT/model (for tuning)
#   report     OUT/loss.png, OUT/f1.png     (gnuplot)
#   cv         OUT/cv-metrics.json, OUT/cv-metrics.txt   only with FOLDS=K (NOTES): vet-eval over
#                                           the K folds' test predictions pooled (every note scored
#                                           once); OUT/fold-I/ holds fold I's whole job (FOLD=I/K:
#                                           vet-pack --fold, its test split fold I of K, the rest
#                                           split train/val 80/10), as the stages above
#   code       OUT/coded.csv (CODED)        the notes of NEW (no codes column needed) coded by the
#                                           model(s) that coded the test split, as vet-dump --csv's
#                                           table: the codes, their terms (CODES), with RANK the
#                                           top-1 p (at CALIBRATE's temperature) and with REFER
#                                           which notes go to a person (OUT/threshold.txt);
#                                           OUT/new.tok.msgpack.zst, OUT/new-predictions.msgpack.zst
# Each stage is a file target with real dependencies (its input files, CODES and CONSTRAIN for
# generate and eval, BASE's weights or an INIT config.json for train and refit), and each stage's
# arguments are kept in OUT/.args/STAGE, compared byte for byte and written by the make that runs
# the stage: changing an input or the arguments reruns that stage and those after it, and a
# rerun with nothing changed does nothing. One make at a time on an OUT (OUT/.lock: a second is
# refused while the first runs). Paths must not hold blanks or quotes (refused up front).

VET_TOP   := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)
VET_BIN   ?= $(VET_TOP)/bin
OUT       ?= out
NOTES     ?=
TRAIN     ?=
VAL       ?=
TEST      ?=
BASE      ?=
INIT      ?= $(if $(BASE),,tiny)
# The tokenizer: TOKENIZER (SPM is its old name), else BASE's whichever kind it is (a SentencePiece
# tokenizer.model or a byte-level BPE tokenizer.json; BASE itself when it holds both, and
# vet-tokenize says which its tokenizer_config.json names), else one trained on the notes.
SPM       ?=
BASE_TOKENIZER = $(if $(wildcard $(BASE)/tokenizer.json),$(if $(wildcard $(BASE)/tokenizer.model),$(BASE),$(BASE)/tokenizer.json),$(if $(wildcard $(BASE)/tokenizer.model),$(BASE)/tokenizer.model,$(BASE)))
TOKENIZER ?= $(or $(SPM),$(if $(BASE),$(BASE_TOKENIZER),$(OUT)/tokenizer.model))
CODES     ?=
VOCAB     ?= 1024
SEED      ?= 1
# vet-train's --seed (initialization, data order, dropout); empty: vet-train's default (42).
# pipelines/seeds.sh sets it to train one model per seed.
TRAIN_SEED ?=
# Which model codes the test split. train+val: OUT/refit, the train stage's run (same arguments,
# same seed) on the train and val splits together, every note outside the test split; OUT/model
# (train split only, validation loss in its log) is still what `val`, `report`'s loss curves and
# choosing settings use, and is trained only when one of them is asked for. train: OUT/model
# codes the test split. From scratch the default is train+val (chosen by cross-validation,
# docs/tuning-log.md, round 6); with BASE it is train (the reference recipe trains once).
FIT ?= $(if $(BASE),train,train+val)
# How many refit models decode the test split as one (vet-generate --model given K times: each
# token from the members' mean next-token probability). Member 1 is OUT/refit (seed TRAIN_SEED,
# else vet-train's 42); member k is OUT/refit-k, trained the same way with seed + 100 (k - 1).
# From scratch the default is 3 (chosen by cross-validation, docs/tuning-log.md, round 8); with BASE
# it is 1 (an adapter is one model), and with FIT=train too. ENSEMBLE > 1 needs FIT=train+val.
ENSEMBLE ?= $(if $(BASE)$(filter train,$(FIT)),1,3)
TOKENIZE_ARGS ?=
# Species-swapped copies of the training notes (vet-tokenize --species-swap; vet-pack trains on
# the train split's copies only and drops the rest, so val and test stay real notes; refit trains
# on train, train's copies and val, as measured). From scratch the default swaps within the DLO
# species pairs (chosen by cross-validation, docs/tuning-log.md, round 7); with BASE it is off, as in
# the reference recipe. SWAP= turns it off.
comma := ,
empty :=
space := $(empty) $(empty)
SWAP ?= $(if $(BASE),,Cow=Buffalo$(comma)Sheep=Goat)
SWAP_FLAG := $(if $(SWAP),--species-swap $(SWAP))
# vet-pack's arguments: SPLIT_ARGS shape the split, and go only where vet-pack makes one (NOTES;
# a given TRAIN/VAL/TEST split is packed as it is, and vet-pack refuses them there); PACK_ARGS go
# to every vet-pack run (the seed orders the rows too).
# FOLD=I/K: fold I of a K-fold cross-validation is the test split (vet-pack --fold; the `cv` stage
# sets it for each fold), the other folds are split train/val 80/10.
FOLD      ?=
FOLDS     ?=
SPLIT_ARGS ?= $(if $(FOLD),--fold $(FOLD),--split 80/10/10) --group-by note --stratify codes
PACK_ARGS ?= --seq-len 512 --seed $(SEED)
# From scratch (INIT) the defaults are tuned for the tiny preset on a CPU, chosen by
# cross-validation on the DLO notes (docs/tuning-log.md, round 5); with BASE they are the
# reference recipe's (vet-train's own defaults).
TRAIN_ARGS ?= $(if $(BASE),,--epochs 15 --lr 3e-3 --batch-size 4 --grad-accum 2 --warmup-ratio 0.05 --weight-decay 0.1 --resid-dropout 0.2)
GEN_ARGS  ?= --batch 16
# New notes to code (the `code` stage): a CSV, Alpaca JSON or JSONL, as NOTES; codes optional.
NEW       ?=
CODED     ?= $(OUT)/coded.csv
EVAL_ARGS ?= --bootstrap 1000

ifeq ($(NOTES)$(TRAIN),)
  $(error set NOTES=notes.csv, or TRAIN=a.csv VAL=b.csv TEST=c.csv)
endif
ifneq ($(NOTES),)
  ifneq ($(TRAIN)$(VAL)$(TEST),)
    $(error set NOTES or TRAIN/VAL/TEST, not both)
  endif
endif
ifneq ($(TRAIN),)
  ifeq ($(VAL)$(TEST),)
    $(error TRAIN= is a given split: set VAL=b.csv and TEST=c.csv too (or NOTES=notes.csv alone, split 80/10/10))
  endif
  ifeq ($(VAL),)
    $(error TRAIN= is a given split: set VAL=b.csv too (the validation notes))
  endif
  ifeq ($(TEST),)
    $(error TRAIN= is a given split: set TEST=c.csv too (the test notes))
  endif
endif

# Paths become make targets and words of shell commands, unquoted: make splits a name at blanks
# (and reads : % * ? [ ] in a target), the shell reads quotes and ; & | < > ( ) $ ` \ in a command.
# A path holding one of them is refused here, before anything is written, instead of making
# stray files and directories under the pieces of the name.
PATH_VARS := OUT NOTES TRAIN VAL TEST BASE INIT TOKENIZER CODES CONSTRAIN NEW CODED VET_BIN
PATH_BAD_CHARS := ' " ` $$ ; & | < > ( ) \ * ? [ ] % :
$(foreach v,$(PATH_VARS),$(if $(word 2,$($(v))),$(error $(v)='$($(v))' has a blank in it: make splits \
  file names at blanks, so OUT and every file the pipeline reads or writes need a path without spaces)))
$(foreach v,$(PATH_VARS),$(foreach c,$(PATH_BAD_CHARS),$(if $(findstring $(c),$($(v))),$(error $(v)='$($(v))' \
  has $(c) in it, which make or the shell cannot take in a file name here: use a path without it))))

V := $(VET_BIN)/
SPLIT_MODE := $(if $(NOTES),notes,given)
PACK_SPLIT_ARGS := $(if $(NOTES),$(SPLIT_ARGS))
TRAIN_NOTES := $(if $(NOTES),$(NOTES),$(TRAIN))
MODEL_FLAG := $(if $(BASE),--base $(BASE),--init $(INIT))
model_flags = $(if $(BASE),--model $(BASE) --adapter $(OUT)/$(1),$(addprefix --model $(OUT)/,$(1)))
GEN_MODEL = $(call model_flags,$(FINAL))
CODES_FLAG := $(if $(CODES),--codes $(CODES))
# Generation writes only labels of this table (vet-generate --constrain): from scratch CODES
# (chosen by cross-validation, docs/tuning-log.md, round 7); with BASE free decoding, as in the
# reference recipe. CONSTRAIN= decodes freely; CONSTRAIN=FILE names another table.
CONSTRAIN ?= $(if $(BASE),,$(CODES))
# RANK=K: instead of generating, every CONSTRAIN label is scored as the answer (vet-generate
# --rank K): the K most probable per note with their probabilities, and vet-eval's hit@k,
# calibration and selective-prediction rows.
RANK ?=
# CALIBRATE=1 (with RANK): the probabilities calibrated by temperature scaling. OUT/model (the
# train split's model) ranks every label of each validation note, vet-eval --fit-temperature
# writes the temperature T that makes their gold labels most probable to OUT/temperature.txt,
# and the test split is ranked with --rank-temperature T. With FIT=train+val the refit, which
# trained on val too, takes the T its train-split twin needed.
CALIBRATE ?=
# REFER=ACC (with RANK; 0 < ACC <= 1): the notes the model is least sure of go to a person. The
# threshold on the top-1 p at which OUT/model codes the validation notes at accuracy ACC (at
# CALIBRATE's temperature when set) goes to OUT/threshold.txt, and eval reports how many test
# notes it codes at that threshold, and how well (vet-eval --refer-below): out of sample.
REFER ?=
GEN_CODES_FLAG := $(if $(CONSTRAIN),--constrain $(CONSTRAIN)$(if $(filter-out $(CONSTRAIN),$(CODES)), --codes $(CODES)),$(CODES_FLAG))$(if $(RANK), --rank $(RANK))

# Settings that cannot work are refused here, before any OUT/.args file is written below.
ENSEMBLE_SIZES := 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16
ifeq ($(filter train train+val,$(FIT)),)
  $(error FIT must be train+val or train (got '$(FIT)'))
endif
ifneq ($(RANK),)
  ifeq ($(CONSTRAIN),)
    $(error RANK=$(RANK) scores the labels of a table: set CONSTRAIN=codes.tsv)
  endif
endif
ifneq ($(CALIBRATE),)
  ifneq ($(CALIBRATE),1)
    $(error CALIBRATE must be 1 or empty (got '$(CALIBRATE)'))
  endif
  ifeq ($(RANK),)
    $(error CALIBRATE=1 calibrates the probabilities of a ranking: set RANK=K too)
  endif
endif
ifneq ($(REFER),)
  ifeq ($(RANK),)
    $(error REFER=$(REFER) refers the notes a ranking is least sure of: set RANK=K too)
  endif
  ifeq ($(shell echo '$(REFER)' | grep -Eqx '0?\.[0-9]*[1-9][0-9]*|1(\.0*)?' && echo ok),)
    $(error REFER must be an accuracy above 0 and at most 1, such as 0.95 (got '$(REFER)'))
  endif
endif
ifneq ($(filter cv,$(MAKECMDGOALS)),)
  ifeq ($(NOTES),)
    $(error the cv stage splits NOTES into folds: set NOTES=notes.csv (not a given TRAIN/VAL/TEST split))
  endif
  ifeq ($(filter $(FOLDS),2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20),)
    $(error the cv stage needs FOLDS=K, the number of folds, from 2 to 20 (got '$(FOLDS)'))
  endif
  ifneq ($(FOLD),)
    $(error FOLD=$(FOLD) is one fold's job; the cv stage runs every fold itself: leave FOLD out)
  endif
endif
ifneq ($(FOLD),)
  ifeq ($(NOTES),)
    $(error FOLD=$(FOLD) splits NOTES into folds: set NOTES=notes.csv (not a given TRAIN/VAL/TEST split))
  endif
endif
ifneq ($(filter code,$(MAKECMDGOALS)),)
  ifeq ($(NEW),)
    $(error the code stage codes new notes: set NEW=notes.csv (with the settings that trained OUT))
  endif
endif
ifeq ($(filter $(ENSEMBLE_SIZES),$(ENSEMBLE)),)
  $(error ENSEMBLE must be a number of models from 1 to 16 (got '$(ENSEMBLE)'))
endif
ifneq ($(ENSEMBLE),1)
  ifneq ($(BASE),)
    $(error ENSEMBLE=$(ENSEMBLE) with BASE: an adapter is decoded alone; set ENSEMBLE=1)
  endif
  ifneq ($(FIT),train+val)
    $(error ENSEMBLE=$(ENSEMBLE) needs FIT=train+val (the members are refits))
  endif
endif

# VOCAB: the size of the tokenizer trained on the notes (spm_train --vocab_size), a whole number.
# spm_train says why a number the notes cannot fill fails (the tokenizer rule prints its log).
no_digits = $(subst 0,,$(subst 1,,$(subst 2,,$(subst 3,,$(subst 4,,$(subst 5,,$(subst 6,,$(subst 7,,$(subst 8,,$(subst 9,,$(1)))))))))))
ifeq ($(TOKENIZER),$(OUT)/tokenizer.model)
  ifneq ($(or $(filter 0%,$(VOCAB)),$(word 2,$(VOCAB)),$(call no_digits,$(VOCAB)),$(if $(strip $(VOCAB)),,empty)),)
    $(error VOCAB must be a whole number of pieces such as 1024 (got '$(VOCAB)'))
  endif
endif

.PHONY: all tokenizer tokenize pack train refit temperature threshold generate eval val report code cv
.DELETE_ON_ERROR:
all: eval

# --- one make at a time on OUT ---------------------------------------------------------------
# Two makes writing one OUT would each take the other's files for their own (a stage recorded
# as done with another run's settings). A real run (not -n or -q) holds OUT/.lock: it writes
# its process id there (under flock(1)), and a second make on the same OUT while that process
# lives is refused. The file stays after the run; the next make finds its process gone and
# takes it over.
DRY_RUN := $(findstring n,$(firstword -$(MAKEFLAGS)))$(findstring q,$(firstword -$(MAKEFLAGS)))
ifeq ($(DRY_RUN),)
  out_lock = mkdir -p $(OUT)/.args || exit 1; me=$$PPID; \
    since() { sed 's/.*) //' /proc/$$1/stat 2>/dev/null | cut -d' ' -f20; }; \
    exec 9>>$(OUT)/.lock || exit 1; \
    if command -v flock >/dev/null 2>&1; then flock 9 || exit 1; fi; \
    pid= start=; read -r pid start <$(OUT)/.lock; \
    if [ -n "$$pid" ] && [ "$$pid" != "$$me" ] && { kill -0 "$$pid" || [ -d "/proc/$$pid" ]; } 2>/dev/null && \
      [ "$$(since "$$pid")" = "$$start" ]; then echo "$$pid"; \
    else printf '%s %s\n' "$$me" "$$(since "$$me")" >$(OUT)/.lock; fi
  LOCKED_BY := $(shell $(out_lock))
  ifneq ($(LOCKED_BY),)
    $(error another make (process $(LOCKED_BY)) is running on OUT=$(OUT): wait for it to finish, or give \
      this run another OUT (OUT/.lock names the process))
  endif
endif

# --- arguments as files: OUT/.args/STAGE changes only when the stage's arguments do --------
# Compared, byte for byte, when the makefile is read, so `make -n` and `make -q` tell the truth;
# a stage whose arguments changed has its OUT/.args/STAGE out of date, and a real run rewrites
# the file only when it builds that stage (then older outputs rebuild), so a make for one stage
# records nothing for the others. A dry run (-n, -q) writes nothing.
args = $(OUT)/.args/$(1)
define newline


endef
args_write = $(if $(DRY_RUN),@: the $(1) arguments changed,$(file >$@,$(ARGS_$(1))$(newline))@:)
define stage_args
ifneq ($$(wildcard $(call args,$(1)))x$$(file <$(call args,$(1)))x,$(call args,$(1))x$$(ARGS_$(1))x)
$(call args,$(1)): ARGS_CHANGED
	$$(call args_write,$(1))
endif
endef
ARGS_tokenizer = $(VOCAB) $(TOKENIZE_ARGS)
ARGS_tokenize = $(TOKENIZER) $(TOKENIZE_ARGS) $(SWAP_FLAG)
ARGS_pack = $(if $(PACK_SPLIT_ARGS),$(PACK_SPLIT_ARGS) )$(PACK_ARGS)
TRAIN_SEED_FLAG := $(if $(TRAIN_SEED), --seed $(TRAIN_SEED))
# The refit's members: refit, refit-2 ... refit-K, each a stage of its own with its seed.
MEMBERS := refit $(addprefix refit-,$(wordlist 2,$(ENSEMBLE),$(ENSEMBLE_SIZES)))
SEED_FLAG_train := $(TRAIN_SEED_FLAG)
SEED_FLAG_refit := $(TRAIN_SEED_FLAG)
$(foreach k,$(wordlist 2,$(ENSEMBLE),$(ENSEMBLE_SIZES)),$(eval \
  SEED_FLAG_refit-$(k) := $$(space)--seed $(shell echo $$(( $(or $(TRAIN_SEED),42) + 100 * ($(k) - 1) )))))
$(foreach s,train $(MEMBERS),$(eval ARGS_$(s) = $$(MODEL_FLAG) $$(TRAIN_ARGS)$$(SEED_FLAG_$(s))))
# The model(s) that generate the test split's diagnoses, and the stages that make them.
FINAL     := $(if $(filter train+val,$(FIT)),$(MEMBERS),model)
FINAL_DONE := $(if $(filter train+val,$(FIT)),$(MEMBERS:%=$(OUT)/%.done),$(OUT)/train.done)
ARGS_generate = $(GEN_MODEL) $(GEN_CODES_FLAG) $(GEN_ARGS)$(if $(CALIBRATE), --rank-temperature (OUT/temperature.txt))
ARGS_eval = $(CODES_FLAG) $(EVAL_ARGS)$(if $(REFER), --refer-below (OUT/threshold.txt))
ARGS_threshold = $(REFER) $(CALIBRATE)
ARGS_code = $(NEW)
$(foreach s,tokenizer tokenize pack train $(MEMBERS) generate eval threshold $(if $(NEW),code),$(eval $(call stage_args,$(s))))
.PHONY: ARGS_CHANGED

# --- tokenizer: only when neither TOKENIZER nor BASE names one ------------------------------
# The project's LLaMA-like settings (mk/data.mk explains them), trained on the training notes
# rendered in the prompt template. With NOTES, that is every note: the split comes later, and
# the tokenizer sees text only (digits are split one by one, so no code is a single piece).
tokenizer: $(TOKENIZER)
$(OUT)/tokenizer.model: $(TRAIN_NOTES) $(call args,tokenizer)
	@mkdir -p $(@D)/.spm
	$(V)vet-tokenize --text $(TOKENIZE_ARGS) $(TRAIN_NOTES) -o $(@D)/.spm/text.txt
	cd $(@D)/.spm && spm_train --input=text.txt --model_prefix=tokenizer --vocab_size=$(VOCAB) \
	  --model_type=bpe --character_coverage=1.0 --byte_fallback=true --split_digits=true \
	  --allow_whitespace_only_pieces=true --remove_extra_whitespaces=false \
	  --normalization_rule_name=identity --add_dummy_prefix=true --max_sentence_length=4192 \
	  --unk_id=0 --bos_id=1 --eos_id=2 --pad_id=-1 --input_sentence_size=0 \
	  --shuffle_input_sentence=false --num_threads=1 --minloglevel=2 >spm_train.log 2>&1 || { status=$$?; \
	  echo "vet.mk: spm_train failed (exit $$status) training the tokenizer with VOCAB=$(VOCAB); the end of $(@D)/.spm/spm_train.log:" >&2; \
	  tail -n 5 spm_train.log >&2; exit 1; }
	mv $(@D)/.spm/tokenizer.model $@

# --- tokenize --------------------------------------------------------------------------------
ifeq ($(SPLIT_MODE),notes)
TOKENS := $(OUT)/notes.tok.msgpack.zst
$(TOKENS): $(NOTES) $(TOKENIZER) $(call args,tokenize)
	$(V)vet-tokenize --tokenizer $(TOKENIZER) $(TOKENIZE_ARGS) $(SWAP_FLAG) --stats $(NOTES) -o $@
else
TOKENS := $(OUT)/train.tok.msgpack.zst $(OUT)/val.tok.msgpack.zst $(OUT)/test.tok.msgpack.zst
$(OUT)/train.tok.msgpack.zst: $(TRAIN) $(TOKENIZER) $(call args,tokenize)
	$(V)vet-tokenize --tokenizer $(TOKENIZER) $(TOKENIZE_ARGS) $(SWAP_FLAG) --stats $(TRAIN) -o $@
$(OUT)/val.tok.msgpack.zst: $(VAL) $(TOKENIZER) $(call args,tokenize)
	$(V)vet-tokenize --tokenizer $(TOKENIZER) $(TOKENIZE_ARGS) $(SWAP_FLAG) $(VAL) -o $@
$(OUT)/test.tok.msgpack.zst: $(TEST) $(TOKENIZER) $(call args,tokenize)
	$(V)vet-tokenize --tokenizer $(TOKENIZER) $(TOKENIZE_ARGS) $(SWAP_FLAG) $(TEST) -o $@
endif
tokenize: $(TOKENS)

# --- pack: packed rows to train on, and the test split one sample per row ---------------------
# Both vet-pack runs write into OUT/.pack.tmp; then rows/, the list of the files written
# (OUT/.pack.files) and packed/ are moved into place, packed/ last. packed/train.msgpack.zst, the
# stage's target, is there only when every file of the same run is: a run killed at any point
# (even with -9, which make cannot clean up after) leaves the target missing or older than the
# stage's inputs, and the stage runs again. A file of the list that is gone runs it again too.
PACKED := $(OUT)/packed/train.msgpack.zst
PACK_TMP := $(OUT)/.pack.tmp
ifeq ($(SPLIT_MODE),notes)
PACK_IN := $(TOKENS)
else
PACK_IN := --train-in $(OUT)/train.tok.msgpack.zst --val-in $(OUT)/val.tok.msgpack.zst --test-in $(OUT)/test.tok.msgpack.zst
endif
# (an OUT packed before the list was kept: its test rows at least)
PACK_FILES := $(if $(wildcard $(OUT)/.pack.files),$(addprefix $(OUT)/,$(file <$(OUT)/.pack.files)),$(if \
  $(wildcard $(PACKED)),$(OUT)/rows/test.msgpack.zst))
PACK_MISSING := $(filter-out $(wildcard $(PACK_FILES)),$(PACK_FILES))
$(PACKED): $(TOKENS) $(call args,pack) $(if $(PACK_MISSING),ARGS_CHANGED)
	rm -rf $(PACK_TMP) && mkdir -p $(PACK_TMP)/packed $(PACK_TMP)/rows
	$(V)vet-pack $(PACK_SPLIT_ARGS) $(PACK_ARGS) --summary $(PACK_TMP)/packed/summary.json --out $(PACK_TMP)/packed $(PACK_IN)
	$(V)vet-pack $(PACK_SPLIT_ARGS) $(PACK_ARGS) --no-pack --out $(PACK_TMP)/rows $(PACK_IN)
	cd $(PACK_TMP) && find packed rows -type f | LC_ALL=C sort >files
	rm -rf $(OUT)/packed $(OUT)/rows $(OUT)/.pack.files
	mv $(PACK_TMP)/rows $(OUT)/rows && mv $(PACK_TMP)/files $(OUT)/.pack.files && \
	  mv $(PACK_TMP)/packed $(OUT)/packed && rmdir $(PACK_TMP)
$(OUT)/rows/test.msgpack.zst $(OUT)/rows/val.msgpack.zst $(OUT)/rows/train.msgpack.zst \
  $(OUT)/packed/val.msgpack.zst $(OUT)/packed/test.msgpack.zst $(OUT)/packed/summary.json: $(PACKED)
pack: $(PACKED)

# --- train and refit: one vet-train run each, on different data into different directories ---
#   train  OUT/model   the train split, validation loss on val (settings are chosen with it)
#   refit  OUT/refit   train and val together (FIT=train+val: the model that codes the test split)
#          OUT/refit-k the same with another seed, for ENSEMBLE=K
TRAIN_DATA_train := --train $(OUT)/packed/train.msgpack.zst --val $(OUT)/packed/val.msgpack.zst
TRAIN_DATA_refit := --train $(OUT)/packed/train.msgpack.zst --train $(OUT)/packed/val.msgpack.zst
TRAIN_DIR_train  := model
$(foreach m,$(MEMBERS),$(eval TRAIN_DIR_$(m) := $(m))$(eval TRAIN_DATA_$(m) := $(TRAIN_DATA_refit)))
# The model training starts from is an input too: BASE's config and weights (its *.json and
# *.safetensors; a GGUF base, the file), or INIT when it is a config.json rather than a preset
# (vet-train's test: a name with a / or .json in it).
MODEL_FILES := $(if $(BASE),$(if $(wildcard $(BASE)/.),$(wildcard $(BASE)/*.json $(BASE)/*.safetensors),$(BASE)),$(if \
  $(or $(findstring /,$(INIT)),$(findstring .json,$(INIT))),$(INIT)))
# A stage that runs after an interruption continues the run: when OUT/DIR/checkpoints holds the
# checkpoints of the run this recipe started (its OUT/DIR/.started is newer than every input,
# the stage's arguments included), vet-train --resume takes the newest; it still checks that the
# settings, base and data are the run's (exit 1 if not). Otherwise the stage trains afresh: the
# checkpoints an older run left go first (vet-train refuses a fresh run beside them).
$(OUT)/train.done $(MEMBERS:%=$(OUT)/%.done): $(OUT)/%.done: $(PACKED) $(TOKENIZER) $(MODEL_FILES) $(OUT)/.args/%
	rm -f $@
	d=$(OUT)/$(TRAIN_DIR_$*); resume=; \
	if [ -d $$d/checkpoints ] && [ -e $$d/.started ] && [ -z "$$(find $^ -newer $$d/.started)" ]; then \
	  echo "vet.mk: $$d: continuing the interrupted run from its newest checkpoint" >&2; resume="--resume $$d"; \
	else rm -rf $$d/checkpoints && mkdir -p $$d && touch $$d/.started || exit 1; fi; \
	$(V)vet-train $(MODEL_FLAG) --tokenizer $(TOKENIZER) $(TRAIN_DATA_$*) \
	  --out $(OUT)/$(TRAIN_DIR_$*) $(TRAIN_ARGS)$(SEED_FLAG_$*) $$resume
	touch $@
train: $(OUT)/train.done
refit: $(MEMBERS:%=$(OUT)/%.done)

# --- temperature and threshold: RANK's probabilities calibrated, and the referral threshold
# chosen, on the validation split ranked whole by OUT/model (CALIBRATE=1, REFER=ACC) --------------
# CONSTRAIN and CODES are inputs of generate and eval (and of code): editing the table reruns them.
TABLES := $(sort $(CONSTRAIN) $(CODES))
$(OUT)/val-ranked.msgpack.zst: $(OUT)/train.done $(OUT)/rows/val.msgpack.zst $(call args,generate) $(TABLES)
	$(V)vet-generate $(call model_flags,model) --tokenizer $(TOKENIZER) $(GEN_CODES_FLAG) $(GEN_ARGS) --rank all \
	  $(OUT)/rows/val.msgpack.zst -o $@
$(OUT)/temperature.txt: $(OUT)/val-ranked.msgpack.zst
	$(V)vet-eval -q --fit-temperature $@ $<
temperature: $(OUT)/temperature.txt
$(OUT)/threshold.txt: $(OUT)/val-ranked.msgpack.zst $(call args,threshold) $(if $(CALIBRATE),$(OUT)/temperature.txt)
	$(V)vet-eval -q --fit-threshold $@ --target-accuracy $(REFER) \
	  $(if $(CALIBRATE),--temperature "$$(cat $(OUT)/temperature.txt)") $<
threshold: $(OUT)/threshold.txt

# --- generate: the test split ------------------------------------------------------------------
$(OUT)/predictions.msgpack.zst: $(FINAL_DONE) $(OUT)/rows/test.msgpack.zst $(call args,generate) $(TABLES) $(if $(CALIBRATE),$(OUT)/temperature.txt)
	$(V)vet-generate $(GEN_MODEL) --tokenizer $(TOKENIZER) $(GEN_CODES_FLAG) $(GEN_ARGS) \
	  $(if $(CALIBRATE),--rank-temperature "$$(cat $(OUT)/temperature.txt)") $(OUT)/rows/test.msgpack.zst -o $@
generate: $(OUT)/predictions.msgpack.zst

# --- eval ----------------------------------------------------------------------------------------
# When --fail-under in EVAL_ARGS fails the stage (vet-eval's exit 4), metrics.json and
# metrics.txt still hold the scores that failed (metrics.json is .PRECIOUS, so .DELETE_ON_ERROR
# leaves it), dated a second before the predictions: the stage is not done, and the next make
# runs eval again (and fails again) instead of taking the failed floor for a pass.
.PRECIOUS: $(OUT)/metrics.json
$(OUT)/metrics.json: $(OUT)/predictions.msgpack.zst $(call args,eval) $(CODES) $(if $(REFER),$(OUT)/threshold.txt)
	$(V)vet-eval $(CODES_FLAG) $(EVAL_ARGS) --baseline-from $(OUT)/packed/train.msgpack.zst \
	  $(if $(REFER),--refer-below "$$(cat $(OUT)/threshold.txt)") \
	  --json $@.tmp $(OUT)/predictions.msgpack.zst >$(OUT)/metrics.txt; status=$$?; \
	  cat $(OUT)/metrics.txt; [ -f $@.tmp ] && mv $@.tmp $@; \
	  if [ $$status = 4 ] && [ -f $@ ]; then \
	    touch -d "@$$(( $$(stat -c %Y $(OUT)/predictions.msgpack.zst) - 1 ))" $@ $(OUT)/metrics.txt; \
	    echo "vet.mk: the accuracy is below EVAL_ARGS' --fail-under: $@ holds the scores (the stage reruns next time)" >&2; \
	  fi; exit $$status
eval: $(OUT)/metrics.json

# --- val: the same on the validation split, for choosing settings without looking at test ----
$(OUT)/val-predictions.msgpack.zst: $(OUT)/train.done $(OUT)/rows/val.msgpack.zst $(call args,generate) $(TABLES)
	$(V)vet-generate $(call model_flags,model) --tokenizer $(TOKENIZER) $(GEN_CODES_FLAG) $(GEN_ARGS) $(OUT)/rows/val.msgpack.zst -o $@
$(OUT)/val-metrics.json: $(OUT)/val-predictions.msgpack.zst $(call args,eval) $(CODES)
	$(V)vet-eval $(CODES_FLAG) --bootstrap 0 --baseline-from $(OUT)/packed/train.msgpack.zst \
	  --json $@.tmp $< >$(OUT)/val-metrics.txt && mv $@.tmp $@ && cat $(OUT)/val-metrics.txt
val: $(OUT)/val-metrics.json

# --- code: new notes, coded by the model(s) that coded the test split ---------------------------
# The notes are tokenized as the training notes were (no species swaps: each note is coded once).
# CODED is written whole or not at all.
$(OUT)/new.tok.msgpack.zst: $(NEW) $(TOKENIZER) $(call args,tokenize) $(call args,code)
	$(V)vet-tokenize --tokenizer $(TOKENIZER) $(TOKENIZE_ARGS) $(NEW) -o $@
$(OUT)/new-predictions.msgpack.zst: $(OUT)/new.tok.msgpack.zst $(FINAL_DONE) $(call args,generate) $(TABLES) $(if $(CALIBRATE),$(OUT)/temperature.txt)
	$(V)vet-generate $(GEN_MODEL) --tokenizer $(TOKENIZER) $(GEN_CODES_FLAG) $(GEN_ARGS) \
	  $(if $(CALIBRATE),--rank-temperature "$$(cat $(OUT)/temperature.txt)") $< -o $@
$(CODED): $(OUT)/new-predictions.msgpack.zst $(CODES) $(if $(REFER),$(OUT)/threshold.txt)
	$(V)vet-dump --csv $(if $(CODES),--codes $(CODES)) $(if $(REFER),--refer-below "$$(cat $(OUT)/threshold.txt)") \
	  $< >$@.tmp && mv $@.tmp $@
	@echo "$@: $$($(V)vet-dump --count $<) notes coded" >&2
code: $(CODED)

# --- cv: K-fold cross-validation --------------------------------------------------------------
# Each fold is the whole job in OUT/fold-I with FOLD=I/K (a make of its own, with its own lock and
# stage arguments: rerunning cv redoes only what changed), up to its test split's predictions;
# vet-eval then checks from their headers that the K are the test splits of one set of folds and
# scores them pooled: every note once, by the model that never saw it. The folds run one after the
# other (each vet-train takes every core); OUT/fold-I/metrics.json is each fold's own score, and
# OUT/fold-I.log what its make printed.
CV_FOLDS := $(if $(FOLDS),$(shell seq 0 $$(( $(FOLDS) - 1 )) 2>/dev/null))
CV_PREDS := $(CV_FOLDS:%=$(OUT)/fold-%/predictions.msgpack.zst)
.PHONY: CV_FOLD_RUNS
# (A dry run, -n or -q, runs each fold's make the same way, which prints or checks its commands and
# writes nothing.)
CV_FOLD_MAKE = $(MAKE) --no-print-directory -f $(VET_TOP)/pipelines/vet.mk OUT=$(OUT)/fold-$$i FOLD=$$i/$(FOLDS) FOLDS= eval
CV_FOLD_RUNS:
ifeq ($(DRY_RUN),)
	+@set -e; mkdir -p $(OUT); for i in $(CV_FOLDS); do \
	  echo "vet.mk: cross-validation fold $$i/$(FOLDS) into $(OUT)/fold-$$i" >&2; \
	  $(CV_FOLD_MAKE) >$(OUT)/fold-$$i.log; \
	  echo "vet.mk: fold $$i/$(FOLDS): $$(grep -m1 '^accuracy' $(OUT)/fold-$$i/metrics.txt)" >&2; \
	done
else
	+@set -e; for i in $(CV_FOLDS); do $(CV_FOLD_MAKE); done
endif
$(CV_PREDS): CV_FOLD_RUNS ;
.PRECIOUS: $(OUT)/cv-metrics.json
$(OUT)/cv-metrics.json: $(CV_PREDS) $(CODES)
	$(V)vet-eval $(CODES_FLAG) $(EVAL_ARGS) --json $@.tmp $(CV_PREDS) >$(OUT)/cv-metrics.txt && \
	  mv $@.tmp $@ && cat $(OUT)/cv-metrics.txt
cv: $(OUT)/cv-metrics.json

# --- report: pictures with gnuplot ---------------------------------------------------------------
report: $(OUT)/loss.png $(OUT)/f1.png
$(OUT)/loss.png: $(OUT)/train.done $(VET_TOP)/pipelines/plot-loss.sh
	sh $(VET_TOP)/pipelines/plot-loss.sh $(OUT)/model/train.log.jsonl $@
$(OUT)/f1.png: $(OUT)/metrics.json $(VET_TOP)/pipelines/plot-f1.sh
	sh $(VET_TOP)/pipelines/plot-f1.sh $< $@


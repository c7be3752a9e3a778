# oscine - plain GNU make. `make help` lists the targets.

CC       ?= cc
CFLAGS   ?= -O2 -g
LDFLAGS  ?=
PREFIX   ?= /usr/local
DESTDIR  ?=
BUILD    ?= build
PYTHON   ?= /usr/bin/python3

# Nothing here runs pkg-config or the compiler while make reads this file: a
# stock Debian has neither until `make deps` (tools/deps.sh) installs them,
# possibly in the same run. Each flag below is found the first time a rule
# needs it, once per run (`X = $(eval X := ...)$(X)`), and the effective flags
# are kept in stamp files ($(BUILD)/flags*, below) that every object and
# program depends on: changing CC, CFLAGS, LDFLAGS, PREFIX or what a probe
# finds rebuilds what depends on it, and objects made with other flags (say,
# by a run that failed before pkg-config was installed) are never reused.
PKGS     := portaudio-2.0 sndfile fftw3f liblo soxr libpng
DEPS_HINT = run 'sh tools/deps.sh' (Debian 12: installs the packages the build needs)
pkg_flags = $(if $(shell pkg-config --exists $(PKGS) 2>/dev/null && echo ok),$(shell pkg-config $1 $(PKGS)),\
    $(error pkg-config or a library is missing (pkg-config --exists $(PKGS) failed): $(DEPS_HINT)))
PKG_CFLAGS = $(eval PKG_CFLAGS := $(call pkg_flags,--cflags))$(PKG_CFLAGS)
PKG_LIBS   = $(eval PKG_LIBS := $(call pkg_flags,--libs) -lopenblas -lm -lpthread$(if $(HAVE_MVEC), -lmvec))$(PKG_LIBS)

# The C compiler and OpenBLAS (no .pc file in Debian 12), checked where a
# rule first needs the flags, so that their absence is one clear line.
HAVE_CC   = $(eval HAVE_CC := $(shell command -v $(firstword $(CC)) >/dev/null 2>&1 && echo 1))$(HAVE_CC)
HAVE_BLAS = $(eval HAVE_BLAS := $(shell printf '\043include <cblas.h>\nint main(void) { return (int)cblas_sdot(0, 0, 1, 0, 1); }\n' \
                 | $(CC) -x c -o /dev/null - -lopenblas 2>/dev/null && echo 1))$(HAVE_BLAS)
CHECK_TOOLS = $(if $(HAVE_CC),,$(error no C compiler '$(CC)': $(DEPS_HINT)))$(if $(HAVE_BLAS),,\
    $(error OpenBLAS (cblas.h, -lopenblas) not found: $(DEPS_HINT)))

# glibc's vector math library (libmvec, glibc 2.35+ on x86-64): the GELU of the
# vocoder takes erf four values at a time from it (src/nn/act.c), 13 times
# faster than erff one by one. Probed, so other C libraries build without it.
HAVE_MVEC = $(eval HAVE_MVEC := $(shell printf '\043include <emmintrin.h>\n__m128 _ZGVbN4v_erff(__m128);\nint main(void) { return (int)_mm_cvtss_f32(_ZGVbN4v_erff(_mm_set1_ps(0.5f))); }\n' \
                 | $(CC) -x c -o /dev/null - -lmvec -lm 2>/dev/null && echo 1))$(HAVE_MVEC)

WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -fPIC -fvisibility=hidden -ftree-vectorize \
             $(WARN) -Iinclude -Isrc $(PKG_CFLAGS)$(if $(HAVE_MVEC), -DOSCINE_HAVE_MVEC) $(CFLAGS)
# The one thing PREFIX changes in a build: where the installed files are
# looked for when the program or plugin does not sit in an installed tree
# (src/base/paths.c finds share/oscine beside it first). Only paths.o and
# the tests see it, so a new PREFIX rebuilds those alone.
DATADIR_FLAG = -DOSCINE_DATADIR=\"$(PREFIX)/share/oscine\"

# The library: every layer below the front ends (src/cli is the command).
LIB_SRC  := $(sort $(wildcard src/base/*.c src/dsp/*.c src/nn/*.c src/models/*.c \
                              src/engine/*.c src/io/*.c src/osc/*.c))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
TEST_UTIL:= $(sort $(wildcard tests/util/*.c))
BENCH_SRC:= $(sort $(wildcard bench/bench_*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
UTIL_OBJ := $(TEST_UTIL:%.c=$(BUILD)/obj/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/obj/%.o)
TESTS    := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCHES  := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

.PHONY: all test asan bench install install-user uninstall clean deps demo help fixtures FORCE
all: $(BUILD)/oscine $(BUILD)/liboscine.a $(BUILD)/liboscine.so plugins

# A recipe that fails or is interrupted leaves no target behind, and test
# objects are kept (not deleted as intermediates), so nothing is half-made.
.DELETE_ON_ERROR:
.SECONDARY: $(TEST_OBJ) $(BENCH_SRC:%.c=$(BUILD)/obj/%.o)

help:
	@echo "make            build build/oscine, build/liboscine.a, build/liboscine.so, the plugins"
	@echo "make deps       install the Debian packages the build and tests need (root or sudo)"
	@echo "make demo       denoise the bundled noisy speech clip (and draw spectrograms)"
	@echo "make test       build and run the test suite"
	@echo "make asan       the test suite under AddressSanitizer + UBSan (build-asan/)"
	@echo "make bench      benchmarks (ratios against baselines measured in the same run)"
	@echo "make install    install to \$$(DESTDIR)\$$(PREFIX) (default /usr/local); make uninstall"
	@echo "make fixtures   regenerate golden-test fixtures with PyTorch"
	@echo "make clean      remove build outputs"

deps:
	sh tools/deps.sh

# ------------------------------------------------------------------ flags
# Each stamp holds the flags it stands for and is rewritten only when they
# change (its date then moves, and what depends on it is rebuilt).
# $(BUILD)/flags: compiler, compile and link flags, probe results (everything
# depends on it); flags-prefix: PREFIX (paths.o, the tests); flags-tests: the
# test-only libraries (the test programs). The test stamp also checks that
# the test packages are installed (Debian), naming what is missing.
STAMP = printf '%s\n' '$(subst ','\'',$(STAMP_TEXT))' > $@.tmp && \
        if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv -f $@.tmp $@; echo "$@: new flags"; fi
$(BUILD)/flags: STAMP_TEXT = $(CHECK_TOOLS)CC=$(CC) | compile: $(ALL_CFLAGS) | link: $(LDFLAGS) $(PKG_LIBS)
$(BUILD)/flags-prefix: STAMP_TEXT = $(DATADIR_FLAG)
$(BUILD)/flags-tests: STAMP_TEXT = $(LILV_CFLAGS) | $(LILV_LIBS)
$(BUILD)/flags $(BUILD)/flags-prefix: FORCE
	@mkdir -p $(BUILD)
	@$(STAMP)
$(BUILD)/flags-tests: FORCE
	@sh tools/deps.sh test --check
	@mkdir -p $(BUILD)
	@$(STAMP)

$(BUILD)/obj/src/base/paths.o $(TEST_OBJ): private EXTRA_CFLAGS = $(DATADIR_FLAG)
$(BUILD)/obj/src/base/paths.o $(TEST_OBJ): $(BUILD)/flags-prefix
$(TEST_OBJ): $(BUILD)/flags-tests

$(BUILD)/obj/%.o: %.c $(BUILD)/flags
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(EXTRA_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/liboscine.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/liboscine.so: $(LIB_OBJ) $(BUILD)/flags
	$(CC) -shared -Wl,-soname,liboscine.so.$(word 1,$(subst ., ,$(VERSION))) $(CFLAGS) $(LDFLAGS) \
	    -o $@ $(LIB_OBJ) $(PKG_LIBS)

$(BUILD)/oscine: $(CLI_OBJ) $(BUILD)/liboscine.a $(BUILD)/flags
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/liboscine.a $(PKG_LIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(UTIL_OBJ) $(BUILD)/liboscine.a $(BUILD)/flags $(BUILD)/flags-tests
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(UTIL_OBJ) $(BUILD)/liboscine.a $(PKG_LIBS) -lcmocka -ljack -ldl

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(BUILD)/liboscine.a $(BUILD)/flags
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/liboscine.a $(PKG_LIBS)

VERSION := $(shell sed -n 's/^\#define OSCINE_VERSION_STRING "\(.*\)"/\1/p' include/oscine.h)

test: all $(TESTS)
	sh tests/run.sh $(BUILD)

ASAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
asan:
	$(MAKE) BUILD=build-asan CFLAGS="$(ASAN_FLAGS)" LDFLAGS="-fsanitize=address,undefined" test

bench: all $(BENCHES)
	@echo "bench: CPU $$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)" \
	    "(family $$(sed -n 's/^cpu family[[:space:]]*: //p' /proc/cpuinfo | head -1)," \
	    "model $$(sed -n 's/^model[[:space:]]*: //p' /proc/cpuinfo | head -1)), $$(nproc) CPUs," \
	    "OPENBLAS_CORETYPE=$${OPENBLAS_CORETYPE:-unset}; timings are CPU time of one thread"
	@for b in $(BENCHES); do echo "== $$b"; $$b || exit 1; done

# Needs only the program (tools/deps.sh build), not the plugins or tests.
demo: $(BUILD)/oscine
	@mkdir -p $(BUILD)/demo
	$(BUILD)/oscine denoise tools/demo/noisy-speech.wav $(BUILD)/demo/denoised-speech.wav
	$(BUILD)/oscine spectrogram $(BUILD)/demo/denoised-speech.png tools/demo/noisy-speech.wav $(BUILD)/demo/denoised-speech.wav --titles input,denoised
	@echo "demo: input     tools/demo/noisy-speech.wav (8.5 s of speech in noise, 5 dB SNR)"
	@echo "      denoised  $(BUILD)/demo/denoised-speech.wav"
	@echo "      picture   $(BUILD)/demo/denoised-speech.png (spectrograms: input above, denoised below)"
	@echo "      program   $(BUILD)/oscine (run it from here, or 'make install'); next: make test"

fixtures:
	$(PYTHON) tools/make_fixtures.py
	$(PYTHON) tools/make_weights_fixture.py
	$(PYTHON) tools/denoise/make_fixture.py
	$(PYTHON) tools/ddsp/make_fixtures.py
	$(PYTHON) tools/ddsp/make_decoder_fixture.py
	$(PYTHON) tools/vocoder/make_fixture.py
	$(PYTHON) tools/vocoder/make_fixture.py --phase diff

# ------------------------------------------------------------------ install
# tools/install.sh copies the files, writes the ones that name PREFIX (the
# pkg-config file, the systemd unit, the PipeWire configs) and keeps a list
# of what it installed and which folders it made in
# share/oscine/installed.txt, so that `make uninstall` removes exactly that
# and the folders it made, when they are empty. Nothing installed holds the
# build's PREFIX: programs and plugins find share/oscine beside them.
INSTALL_ENV = DESTDIR='$(DESTDIR)' PREFIX='$(PREFIX)' BUILD='$(BUILD)' VERSION='$(VERSION)' \
              LV2_FILES='$(LV2_FILES)'
install: all
	$(INSTALL_ENV) PC_PRIVATE='$(PKGS)' PC_MVEC='$(if $(HAVE_MVEC), -lmvec)' sh tools/install.sh install

uninstall:
	$(INSTALL_ENV) sh tools/install.sh uninstall

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# ------------------------------------------------------------------ fuzz
# `make fuzz`: libFuzzer + ASan/UBSan on the weights reader, in build-fuzz/,
# seeded with the weights fixtures; FUZZ_SECONDS of fuzzing (0: build only).
# Needs clang and libclang-rt-14-dev (tools/deps.sh). Crashes are written to
# build-fuzz/ as crash-*; rerun one with build-fuzz/fuzz_weights FILE.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 600
FUZZ_FLAGS   := -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
                $(WARN) -Iinclude -Isrc
FUZZ_WEIGHTS_SRC := tests/fuzz/fuzz_weights.c src/nn/weights.c src/base/error.c

.PHONY: fuzz
build-fuzz/fuzz_weights: $(FUZZ_WEIGHTS_SRC) src/nn/weights.h src/base/error.h include/oscine.h
	@mkdir -p build-fuzz
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $(FUZZ_WEIGHTS_SRC)

fuzz: build-fuzz/fuzz_weights
	@mkdir -p build-fuzz/corpus-weights
	cp tests/fixtures/weights/*.osw build-fuzz/corpus-weights/
	if [ "$(FUZZ_SECONDS)" -gt 0 ]; then cd build-fuzz && ./fuzz_weights \
	    -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 corpus-weights; fi

# ------------------------------------------------------------------ plugins
# The LV2 bundle build/oscine.lv2 (oscine denoise, mono and stereo; oscine
# resynth; oscine synth, the DDSP instrument) and the LADSPA
# build/oscine_denoise_ladspa.so: liboscine linked in statically, the
# entry point the only exported symbol, libraries the plugins do not use
# (PortAudio, liblo, libsndfile) left out by --as-needed. Presets come from
# presets/*.osc (tools/plugins/lv2_presets.sh); the models are copied into the
# bundle when models/ has them (without it the bundle builds and instantiate
# says what is missing). Needs lv2-dev and ladspa-sdk; the tests also need
# liblilv-dev, lilv-utils, sordi, lv2file and pipewire (tools/deps.sh).
LILV_CFLAGS = $(eval LILV_CFLAGS := $(shell pkg-config --cflags lilv-0 2>/dev/null))$(LILV_CFLAGS)
LILV_LIBS   = $(eval LILV_LIBS := $(shell pkg-config --libs lilv-0 2>/dev/null))$(LILV_LIBS)
LV2_DIR     := $(BUILD)/oscine.lv2
LV2_MODELS  := $(wildcard models/denoise-16k.osw models/vocoder-16k.osw models/ddsp-*.osw)
OSC_PRESETS := $(sort $(wildcard presets/*.osc))
PCORE_OBJ   := $(BUILD)/obj/src/lv2/pcore.o
LV2_OBJ     := $(BUILD)/obj/src/lv2/oscine_lv2.o $(BUILD)/obj/src/lv2/synth_lv2.o
LADSPA_OBJ  := $(BUILD)/obj/src/ladspa/oscine_ladspa.o
LV2_FILES   := $(LV2_DIR)/oscine.so $(LV2_DIR)/manifest.ttl $(LV2_DIR)/oscine.ttl \
               $(LV2_DIR)/presets.ttl $(LV2_MODELS:models/%=$(LV2_DIR)/%)
PLUGIN_LINK  = $(CC) -shared $(CFLAGS) $(LDFLAGS) -Wl,--no-undefined

.PHONY: plugins uninstall-user
plugins: $(LV2_FILES) $(BUILD)/oscine_denoise_ladspa.so

$(LV2_DIR)/oscine.so: $(LV2_OBJ) $(PCORE_OBJ) $(BUILD)/liboscine.a src/lv2/exports.map $(BUILD)/flags
	@mkdir -p $(dir $@)
	$(PLUGIN_LINK) -Wl,--version-script=src/lv2/exports.map -o $@ $(LV2_OBJ) $(PCORE_OBJ) \
	    $(BUILD)/liboscine.a -Wl,--as-needed $(PKG_LIBS)

$(BUILD)/oscine_denoise_ladspa.so: $(LADSPA_OBJ) $(PCORE_OBJ) $(BUILD)/liboscine.a src/ladspa/exports.map \
                                   $(BUILD)/flags
	$(PLUGIN_LINK) -Wl,--version-script=src/ladspa/exports.map -o $@ $(LADSPA_OBJ) $(PCORE_OBJ) \
	    $(BUILD)/liboscine.a -Wl,--as-needed $(PKG_LIBS)

$(LV2_DIR)/manifest.ttl: src/lv2/manifest.ttl.in tools/plugins/lv2_presets.sh $(OSC_PRESETS)
	@mkdir -p $(dir $@)
	{ cat src/lv2/manifest.ttl.in && sh tools/plugins/lv2_presets.sh manifest $(OSC_PRESETS); } > $@.tmp
	mv $@.tmp $@

$(LV2_DIR)/presets.ttl: tools/plugins/lv2_presets.sh $(OSC_PRESETS)
	@mkdir -p $(dir $@)
	sh tools/plugins/lv2_presets.sh presets $(OSC_PRESETS) > $@.tmp 2>/dev/null
	mv $@.tmp $@

$(LV2_DIR)/oscine.ttl: src/lv2/oscine.ttl
	@mkdir -p $(dir $@)
	cp $< $@

$(LV2_DIR)/%.osw: models/%.osw
	@mkdir -p $(dir $@)
	cp $< $@

# The lilv test hosts.
LILV_TESTS := $(BUILD)/tests/test_lv2 $(BUILD)/tests/test_lv2_synth
$(LILV_TESTS:$(BUILD)/tests/%=$(BUILD)/obj/tests/%.o): private EXTRA_CFLAGS = $(DATADIR_FLAG) $(LILV_CFLAGS)
$(LILV_TESTS): $(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(UTIL_OBJ) $(BUILD)/liboscine.a $(BUILD)/flags \
                                 $(BUILD)/flags-tests
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(UTIL_OBJ) $(BUILD)/liboscine.a $(PKG_LIBS) \
	    $(LILV_LIBS) -lcmocka -ljack -ldl

USER_LV2  = $(HOME)/.lv2

# `make install-user`: the LV2 bundle into ~/.lv2 (no root needed).
install-user: plugins
	install -d $(USER_LV2)/oscine.lv2
	install -m 755 $(LV2_DIR)/oscine.so $(USER_LV2)/oscine.lv2/oscine.so
	install -m 644 $(filter-out %.so,$(LV2_FILES)) $(USER_LV2)/oscine.lv2/

uninstall-user:
	rm -rf $(USER_LV2)/oscine.lv2

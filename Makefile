# popsd build. `make` builds popsd and popsctl into build/; `make SAN=1` builds
# an AddressSanitizer+UBSan variant into build-san/; `make check` runs every test tier.
CC      ?= cc
SAN     ?= 0
PKGS    := openssl libevent libevent_pthreads sqlite3 libargon2 libcrypt inih libseccomp jansson libcurl libmicrohttpd liboath libqrencode pwquality libidn libsystemd
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread

ifeq ($(SAN),1)
BUILD   := build-san
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
OPT     := -O1 -g
else
BUILD   := build
SANFLAGS :=
OPT     := -O2 -g
HARDEN_CPP := -D_FORTIFY_SOURCE=3
endif

WARN    := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes -Wvla -Wno-unused-parameter
HARDEN  := -fstack-protector-strong -fstack-clash-protection -fcf-protection -fPIE
CFLAGS  += -std=c17 $(OPT) $(WARN) $(HARDEN) $(SANFLAGS) $(PKG_CFLAGS) -Isrc -D_GNU_SOURCE $(HARDEN_CPP)
LDFLAGS += -pie -Wl,-z,relro,-z,now,-z,noexecstack $(SANFLAGS)

LIB_DIRS := common event ipc tls conf sandbox pop3 sasl auth store
LIB_SRC  := $(foreach d,$(LIB_DIRS),$(wildcard src/$(d)/*.c))
LIB_OBJ  := $(LIB_SRC:src/%.c=$(BUILD)/obj/%.o)
ROLE_OBJ := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(wildcard src/roles/*.c))
CTL_OBJ  := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(wildcard src/ctl/*.c))
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all clean check unit integration san-check fuzz fuzz-smoke bench demo
all: $(BUILD)/popsd $(BUILD)/popsctl

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libpopsd.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/popsd: $(ROLE_OBJ) $(BUILD)/libpopsd.a
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/popsctl: $(CTL_OBJ) $(BUILD)/libpopsd.a
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libpopsd.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(BUILD)/libpopsd.a $(PKG_LIBS) -lcmocka

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

# Integration tests start the real daemon on loopback and drive it with real clients.
PYTEST := /usr/bin/python3 -m pytest
integration: all
	POPSD_BUILD=$(abspath $(BUILD)) $(PYTEST) -q $(if $(filter 1,$(SAN)),-m "not slow") tests/integration

# Fuzz targets: libFuzzer + ASan + UBSan, one per parser of untrusted input.
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/%)
FUZZ_FLAGS := -std=c17 -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined $(PKG_CFLAGS) -Isrc -D_GNU_SOURCE
FUZZ_OBJ := $(LIB_SRC:src/%.c=build-fuzz/obj/%.o)
FUZZ_TIME ?= 60
build-fuzz/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@
build-fuzz/libpopsd.a: $(FUZZ_OBJ)
	@rm -f $@
	ar rcs $@ $^
build-fuzz/%: tests/fuzz/%.c build-fuzz/libpopsd.a
	clang $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $< build-fuzz/libpopsd.a $(PKG_LIBS)
fuzz: $(FUZZ_BIN)
	@set -e; for f in $(FUZZ_BIN); do n=$$(basename $$f); mkdir -p build-fuzz/corpus-$$n; \
	  d=tests/fuzz/$$n.dict; dict=""; [ -f $$d ] && dict="-dict=$$d"; \
	  mkdir -p tests/fuzz/corpus/$$n; echo "== $$n ($(FUZZ_TIME)s)"; $$f $$dict -max_total_time=$(FUZZ_TIME) build-fuzz/corpus-$$n tests/fuzz/corpus/$$n; done
fuzz-smoke:
	$(MAKE) fuzz FUZZ_TIME=10

# The README's test command: unit tests, integration tests, the same under ASan+UBSan, fuzz smoke.
check:
	$(MAKE) all unit
	$(MAKE) integration
	$(MAKE) SAN=1 all unit
	$(MAKE) SAN=1 integration
	$(MAKE) fuzz-smoke

demo: all
	sh scripts/demo.sh

# Benchmark (never part of check): popsd against Dovecot on the same data; see bench/RESULTS.md.
build/popsbench: bench/popsbench.c
	@mkdir -p build
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(PKG_LIBS)

# The defence engine under simulated attack, with its default settings (figures for README.md).
build/guard-sim: bench/guard_sim.c $(BUILD)/libpopsd.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libpopsd.a $(PKG_LIBS)

bench: all build/popsbench
	bash bench/run.sh

clean:
	rm -rf build build-san build-fuzz

-include $(shell find $(BUILD) build-fuzz -name '*.d' 2>/dev/null)

# imgbuild: build, test and run.
#
#   make            build ./imgbuild (strict warnings; WERROR=1 turns them into errors)
#   make deps       install every build and run dependency from Debian 12 (idempotent)
#   make run        deps, build, then `imgbuild all` on the default spec
#   make check      deps, build, unit and integration tests, also under ASan/UBSan and
#                   (unit tests) valgrind
#   make check-unit unit tests alone
#   make check-valgrind the unit tests under valgrind's memcheck (normal build)
#   make san        the sanitizer build in build-san/
#   make lint       cppcheck and clang-format check
#   make bench      the assembly benchmark (bench/assembly.sh)
#   make fuzz       libFuzzer targets (clang) in build-fuzz/, each run FUZZ_SECONDS (60)
#   make check-fuzz replay the committed fuzz corpus and regression inputs (seconds)

CC      ?= cc
PKGS    := libarchive yaml-0.1 libcurl openssl libguestfs
WERROR  ?= $(if $(CI),1,0)
SAN     ?= 0
FUZZ    ?= 0
BUILD   := $(if $(filter 1,$(SAN)),build-san,build)
ifeq ($(FUZZ),1)
BUILD   := build-fuzz
endif

WARN := -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
        -Wvla -Wpointer-arith -Wundef -Wwrite-strings -Wno-unused-parameter \
        -Wimplicit-fallthrough -Wnull-dereference
ifeq ($(WERROR),1)
WARN += -Werror
endif

CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 $(WARN) -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -pthread \
           -Ibuilder -MMD -MP
ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif
# The library instrumented for libFuzzer (clang only); the targets link -fsanitize=fuzzer.
ifeq ($(FUZZ),1)
CFLAGS  += -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
           -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=fuzzer,address,undefined
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS  += $(PKG_CFLAGS)
LDLIBS  += $(PKG_LIBS) -pthread

VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
CFLAGS  += -DIMGBUILD_VERSION='"$(VERSION)"'

SRCS      := $(sort $(wildcard builder/*.c builder/*/*.c))
MAIN_SRCS := builder/main.c $(wildcard builder/cmd/*.c)
LIB_SRCS  := $(filter-out $(MAIN_SRCS),$(SRCS))
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/%.o)
MAIN_OBJS := $(MAIN_SRCS:%.c=$(BUILD)/%.o)
TEST_SRCS := $(sort $(wildcard tests/unit/check_*.c))
TEST_BINS := $(TEST_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
TEST_LIBS := $(shell pkg-config --libs check 2>/dev/null)
# Small programs the integration tests and benchmarks drive the library with.
TOOL_SRCS := $(sort $(wildcard tests/tools/*.c))
TOOL_BINS := $(TOOL_SRCS:tests/tools/%.c=$(BUILD)/tests/%)

ifeq ($(SAN),1)
all: $(BUILD)/imgbuild
else
all: imgbuild
endif

imgbuild: $(BUILD)/imgbuild
	ln -sf $(BUILD)/imgbuild $@

$(BUILD)/imgbuild: $(MAIN_OBJS) $(BUILD)/libimgbuild.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/libimgbuild.a: $(LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c tests/unit/testutil.h tests/unit/keypool.h $(BUILD)/libimgbuild.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(BUILD)/libimgbuild.a $(LDLIBS) $(TEST_LIBS)

$(BUILD)/tests/%: tests/tools/%.c $(BUILD)/libimgbuild.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libimgbuild.a $(LDLIBS)

tools: $(TOOL_BINS)

-include $(LIB_OBJS:.o=.d) $(MAIN_OBJS:.o=.d)

deps:
	./tests/install-deps.sh

san:
	$(MAKE) SAN=1 all

check-unit: all $(TEST_BINS)
	IMGBUILD=$(CURDIR)/$(BUILD)/imgbuild tests/run-unit.sh $(TEST_BINS)

# Every unit suite of the normal build under memcheck, two at a time; any report fails.
check-valgrind: all $(TEST_BINS)
	IMGBUILD=$(CURDIR)/$(BUILD)/imgbuild tests/run-valgrind.sh $(TEST_BINS)

check-integration: all $(TOOL_BINS)
	IMGBUILD=$(CURDIR)/$(BUILD)/imgbuild tests/run-integration.sh

# The full suite: deps, strict build, unit + integration, then both again under sanitizers
# (the boot tests run once: the sanitizer build adds nothing a guest could see).
check: deps
	$(MAKE) WERROR=1 all
	$(MAKE) WERROR=1 check-unit
	$(MAKE) WERROR=1 SAN=1 check-unit
	$(MAKE) WERROR=1 check-valgrind
	$(MAKE) WERROR=1 SAN=1 all tools
	IMGBUILD_SAN=$(CURDIR)/build-san/imgbuild $(MAKE) WERROR=1 check-integration
	$(MAKE) WERROR=1 check-fuzz

run: deps all
	./imgbuild all

lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability --inline-suppr \
	  --suppress=missingIncludeSystem -Ibuilder builder
	clang-format --dry-run --Werror $(SRCS) $(wildcard builder/*/*.h)

bench: all tools
	bench/assembly.sh
	bench/fetch.sh
	DELAY_MS=100 bench/fetch.sh

# Fuzzing (tests/fuzz/README.md): one libFuzzer program per parser, built with clang.
FUZZ_SRCS    := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS    := $(FUZZ_SRCS:tests/fuzz/%.c=build-fuzz/%)
FUZZ_SECONDS ?= 60

build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c build-fuzz/libimgbuild.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< build-fuzz/libimgbuild.a $(LDLIBS)

fuzz-bins: $(FUZZ_BINS)

fuzz:
	$(MAKE) FUZZ=1 CC=clang fuzz-bins
	FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh fuzz $(FUZZ_BINS)

check-fuzz:
	$(MAKE) FUZZ=1 CC=clang fuzz-bins
	tests/fuzz/run.sh replay $(FUZZ_BINS)

.PHONY: fuzz fuzz-bins check-fuzz

clean:
	rm -rf build build-san build-fuzz imgbuild

.PHONY: all tools deps san check check-unit check-integration run lint bench clean
.PHONY: check-valgrind

# bgproxy — entry points. `make demo` and `make test` are the README's quick start.
BUILD_DIR      ?= build
ASAN_BUILD_DIR ?= build-asan
JOBS           ?= 2
CMAKE_FLAGS    ?=

.PHONY: all deps build test test-asan demo demo-stop demo-grpc demo-grpc-stop demo-fleet demo-fleet-stop bench package clean

all: build

deps:
	@bash scripts/install-deps

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: deps $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS) --timeout 300

$(ASAN_BUILD_DIR)/build.ninja:
	cmake -S . -B $(ASAN_BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBGPROXY_SANITIZE=ON $(CMAKE_FLAGS)

test-asan: deps $(ASAN_BUILD_DIR)/build.ninja
	cmake --build $(ASAN_BUILD_DIR) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir $(ASAN_BUILD_DIR) --output-on-failure -j $(JOBS) --timeout 600

demo: build
	@bash scripts/demo $(BUILD_DIR)

demo-stop:
	@bash scripts/demo $(BUILD_DIR) stop

# Three bgproxy instances sharing one state through one etcd (README "Running a fleet").
demo-grpc: build
	@bash scripts/demo-grpc $(BUILD_DIR)

demo-grpc-stop:
	@bash scripts/demo-grpc $(BUILD_DIR) stop

demo-fleet: build
	@bash scripts/demo-fleet $(BUILD_DIR)

demo-fleet-stop:
	@bash scripts/demo-fleet $(BUILD_DIR) stop

package: build
	cd $(BUILD_DIR) && cpack -G DEB

bench:
	@bash scripts/install-deps --bench
	@bash bench/run

clean:
	rm -rf $(BUILD_DIR) $(ASAN_BUILD_DIR)

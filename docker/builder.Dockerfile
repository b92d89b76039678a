# syntax=docker/dockerfile:1
# Shared build stage for every pushgate image: compiles the service binaries once.
#
#   podman build -f docker/builder.Dockerfile -t localhost/pushgate-builder:latest .
#
# proxy.Dockerfile, pusher.Dockerfile and emulator.Dockerfile start FROM this image
# (build arg BUILDER), so one `./dev images` compiles the project once, not three times.
# apt uses the image's own sources: scripts/build-images.sh creates the base image with the
# host's Debian mirror, so no other network access is needed.
FROM debian:bookworm-slim

ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config ca-certificates ccache \
      libsofia-sip-ua-dev libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler \
      libabsl-dev libssl-dev libnghttp2-dev libevent-dev libgtest-dev libgmock-dev \
      libtomlplusplus-dev libspdlog-dev libfmt-dev nlohmann-json3-dev libhiredis-dev \
      libcpp-httplib-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . /src

# Only the service binaries are built (no tests, no benchmarks).
ARG TARGETS="pushgate-proxy pushgate-pusher pushgate-emulator pushgate-push"
ARG BUILD_TYPE=Release
ARG JOBS=2
# ccache in a build cache mount (podman/buildah, docker BuildKit): a rebuild after a source
# change recompiles only what changed, although COPY invalidated this layer.
ENV CCACHE_DIR=/ccache CCACHE_MAXSIZE=2G
RUN --mount=type=cache,target=/ccache,id=pushgate-ccache \
    cmake -S /src -B /build -G Ninja -DCMAKE_BUILD_TYPE=${BUILD_TYPE} -DPUSHGATE_WERROR=OFF \
      -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
 && cmake --build /build -j ${JOBS} --target ${TARGETS} \
 && mkdir -p /out/bin \
 && for t in ${TARGETS}; do \
      f=$(find /build -type f -name "$t" -perm -u+x | head -n1); \
      if [ -n "$f" ]; then strip --strip-unneeded -o "/out/bin/$t" "$f"; fi; \
    done \
 && ls -l /out/bin \
 && { ccache --show-stats | grep -E 'Hits|Misses|hit rate' || true; }
# The Debian runtime packages each binary links (the -dev packages' runtime counterparts), found
# from its shared libraries, so the final images install exactly these: /out/deps/<binary>.
RUN mkdir -p /out/deps \
 && for b in /out/bin/*; do \
      ldd "$b" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | while read -r lib; do \
        dpkg -S "*/$(basename "$(readlink -f "$lib")")" 2>/dev/null | head -n1 | cut -d: -f1; \
      done | sort -u >"/out/deps/$(basename "$b")"; \
      echo "$(basename "$b"): $(tr '\n' ' ' <"/out/deps/$(basename "$b")")"; \
    done

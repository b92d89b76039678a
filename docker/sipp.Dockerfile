# syntax=docker/dockerfile:1
# sipp (Debian's sip-tester) as phones and callers on a compose network: the stack test
# (tests/e2e/deploy/stack_test.sh) runs its scenarios in this image.
FROM debian:bookworm-slim
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends sip-tester \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /scenarios
ENTRYPOINT ["sipp"]

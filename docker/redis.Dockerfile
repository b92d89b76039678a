# syntax=docker/dockerfile:1
# Redis for the compose stack, from Debian's redis-server (no registry pull needed here).
# Any Redis >= 6 image works instead (docker.io/library/redis:7).
FROM debian:bookworm-slim
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server redis-tools \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data && chown redis:redis /data
USER redis
WORKDIR /data
EXPOSE 6379/tcp
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["redis-cli", "ping"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["redis-server"]
# Append-only file in /data: a restart keeps the proxy's bindings.
CMD ["--bind", "0.0.0.0", "--protected-mode", "no", "--appendonly", "yes", "--dir", "/data", "--save", ""]

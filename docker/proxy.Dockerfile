# syntax=docker/dockerfile:1
# pushgate-proxy: the SIP push gateway.
#   scripts/build-images.sh proxy      (builds localhost/pushgate-builder first)
# Config: mount a TOML file at /etc/pushgate/proxy.toml (the image holds the defaults, from
# `pushgate-proxy --dump-default`); PUSHGATE_<SECTION>_<KEY> variables override single keys.
# Secrets (the masquerade HMAC secret, TLS keys): mounted files, named in the config.
ARG BUILDER=localhost/pushgate-builder:latest
FROM ${BUILDER} AS build

FROM debian:bookworm-slim
ARG DEBIAN_FRONTEND=noninteractive
COPY --from=build /out/deps/pushgate-proxy /tmp/deps
RUN apt-get update \
 && apt-get install -y --no-install-recommends netbase $(cat /tmp/deps) \
 && rm -rf /var/lib/apt/lists/* /tmp/deps \
 && groupadd --system --gid 10001 pushgate \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin pushgate
COPY --from=build /out/bin/pushgate-proxy /usr/local/bin/
COPY docker/healthz.sh /usr/local/bin/pushgate-healthz
RUN ! ldd /usr/local/bin/pushgate-proxy | grep 'not found' \
 && mkdir -p /etc/pushgate \
 && pushgate-proxy --dump-default >/etc/pushgate/proxy.toml

USER pushgate
# SIP (udp+tcp), SIP over TLS, admin HTTP (/healthz /readyz /metrics).
EXPOSE 5060/udp 5060/tcp 5061/tcp 9090/tcp
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["pushgate-healthz", "9090"]
# SIGTERM: stop accepting, drain in-flight transactions, exit.
STOPSIGNAL SIGTERM
ENTRYPOINT ["pushgate-proxy"]
CMD ["--config", "/etc/pushgate/proxy.toml"]

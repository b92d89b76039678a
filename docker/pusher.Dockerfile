# syntax=docker/dockerfile:1
# pushgate-pusher: the gRPC push service (APNs/FCM over HTTP/2).
#   scripts/build-images.sh pusher     (builds localhost/pushgate-builder first)
# Config: mount a TOML file at /etc/pushgate/pusher.toml (the image holds the defaults, from
# `pushgate-pusher --dump-default`); PUSHGATE_<SECTION>_<KEY> variables override single keys.
# Secrets (APNs .p8 key / certificate, FCM service account JSON, API keys): mounted files
# (compose secrets under /run/secrets, Kubernetes Secret volumes), named in the config.
ARG BUILDER=localhost/pushgate-builder:latest
FROM ${BUILDER} AS build

FROM debian:bookworm-slim
ARG DEBIAN_FRONTEND=noninteractive
COPY --from=build /out/deps/pushgate-pusher /out/deps/pushgate-push /tmp/deps/
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates netbase $(cat /tmp/deps/*) \
 && rm -rf /var/lib/apt/lists/* /tmp/deps \
 && groupadd --system --gid 10001 pushgate \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin pushgate
COPY --from=build /out/bin/pushgate-pusher /out/bin/pushgate-push /usr/local/bin/
COPY docker/healthz.sh /usr/local/bin/pushgate-healthz
RUN ! ldd /usr/local/bin/pushgate-pusher /usr/local/bin/pushgate-push | grep 'not found' \
 && mkdir -p /etc/pushgate \
 && pushgate-pusher --dump-default >/etc/pushgate/pusher.toml

USER pushgate
# gRPC (pushgate.v1.Pusher, grpc.health.v1.Health, reflection), admin HTTP.
EXPOSE 50061/tcp 9101/tcp
# gRPC health (grpc.health.v1.Health/Check, the same check Kubernetes' grpc probe makes).
HEALTHCHECK --interval=10s --timeout=4s --start-period=10s --retries=3 \
  CMD ["pushgate-push", "--health", "--target", "127.0.0.1:50061", "--timeout", "3s"]
# SIGTERM: health turns NOT_SERVING, in-flight pushes finish, then exit.
STOPSIGNAL SIGTERM
ENTRYPOINT ["pushgate-pusher"]
CMD ["--config", "/etc/pushgate/pusher.toml"]

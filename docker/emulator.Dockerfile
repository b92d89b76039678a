# syntax=docker/dockerfile:1
# pushgate-emulator: APNs/FCM emulator for demos and tests (never for production).
#   scripts/build-images.sh emulator   (builds localhost/pushgate-builder first)
# Serves the provider APIs over HTTP/2 + TLS and a plain HTTP control port (GET /received lists
# the pushes it got).
ARG BUILDER=localhost/pushgate-builder:latest
FROM ${BUILDER} AS build

FROM debian:bookworm-slim
ARG DEBIAN_FRONTEND=noninteractive
COPY --from=build /out/deps/pushgate-emulator /tmp/deps
RUN apt-get update \
 && apt-get install -y --no-install-recommends openssl netbase $(cat /tmp/deps) \
 && rm -rf /var/lib/apt/lists/* /tmp/deps \
 && groupadd --system --gid 10001 pushgate \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin pushgate
COPY --from=build /out/bin/pushgate-emulator /usr/local/bin/
COPY docker/healthz.sh /usr/local/bin/pushgate-healthz
RUN ! ldd /usr/local/bin/pushgate-emulator | grep 'not found'

USER pushgate
# HTTP/2 TLS (APNs and FCM APIs), HTTP control (/received, /healthz).
EXPOSE 8443/tcp 8080/tcp
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["pushgate-healthz", "8080", "/stats"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["pushgate-emulator"]
# Without a config file: every interface, a self-signed certificate (localhost only).
CMD ["--listen", "0.0.0.0:8443", "--control", "0.0.0.0:8080"]

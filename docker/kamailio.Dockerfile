# syntax=docker/dockerfile:1
# Kamailio as the demo backend registrar (deploy/kamailio/kamailio.cfg, mounted or baked in).
FROM debian:bookworm-slim
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends kamailio netbase \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /run/kamailio && chown kamailio:kamailio /run/kamailio
COPY deploy/kamailio/kamailio.cfg /etc/kamailio/kamailio.cfg
RUN kamailio -c -f /etc/kamailio/kamailio.cfg
USER kamailio
EXPOSE 5060/udp 5060/tcp
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD ["kamcmd", "-s", "unix:/run/kamailio/kamailio_ctl", "core.uptime"]
STOPSIGNAL SIGTERM
# -DD: stay in the foreground; -E: log to stderr.
ENTRYPOINT ["kamailio", "-DD", "-E", "-f", "/etc/kamailio/kamailio.cfg", "-m", "64", "-M", "8"]

#!/bin/bash
# HTTP GET without curl/wget, over bash's /dev/tcp, for container health checks:
#   pushgate-healthz PORT [PATH] [--print]
# Exit 0 when the status is 200 (PATH defaults to /healthz); --print writes the body to stdout.
port=${1:?usage: pushgate-healthz PORT [PATH] [--print]}
path=${2:-/healthz}
exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$path" >&3
IFS=' ' read -r -t 5 _ status _ <&3 || exit 1
if [[ ${3:-} == --print ]]; then
  while IFS= read -r -t 5 line <&3; do [[ $line == $'\r' || -z $line ]] && break; done
  cat <&3
fi
[[ $status == 200 ]]

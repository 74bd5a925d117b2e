#!/usr/bin/env bash
# Runs a real Prometheus against the running lab: `make prometheus`, with
# `make demo` running in another terminal.
#
#   scripts/prometheus.sh [-addr HOST:PORT] [-file-sd FILE] [-- PROMETHEUS FLAGS...]
#
#   -addr     where Prometheus listens      [$STATELAB_PROMETHEUS_ADDR, default 127.0.0.1:9090]
#   -file-sd  the runner's file_sd file     [$STATELAB_FILE_SD, default ./data/file_sd/statelab.json]
#             (the same variable sets `statelab compare -file-sd`, so one export keeps both in step)
#
# What it does:
#   1. When prometheus is missing, installs Debian's prometheus package with
#      apt-get (through sudo when not root). The package brings prometheus and
#      promtool; on a machine with systemd it also starts its own service on
#      :9090, which this script's default address then collides with: stop it
#      (sudo systemctl disable --now prometheus) or pick another -addr.
#   2. Writes scripts/prometheus.yml, with the file_sd path made absolute,
#      into a temporary directory, checks it with promtool, and runs
#      prometheus with the storage in that directory (removed on exit: the
#      lab's numbers are worth keeping only while you look at them).
#   3. Prints the URL and a few PromQL queries to start from.
set -euo pipefail
cd "$(dirname "$0")/.."

addr=${STATELAB_PROMETHEUS_ADDR:-127.0.0.1:9090}
file_sd=${STATELAB_FILE_SD:-./data/file_sd/statelab.json}

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
	case $1 in
	-addr | --addr) addr=${2:?-addr needs HOST:PORT}; shift 2 ;;
	-addr=* | --addr=*) addr=${1#*=}; shift ;;
	-file-sd | --file-sd) file_sd=${2:?-file-sd needs a file}; shift 2 ;;
	-file-sd=* | --file-sd=*) file_sd=${1#*=}; shift ;;
	-h | -help | --help) usage; exit 0 ;;
	--) shift; break ;;
	*) echo "prometheus.sh: unknown argument $1 (see scripts/prometheus.sh -h)" >&2; exit 2 ;;
	esac
done

if ! command -v prometheus >/dev/null; then
	echo "prometheus.sh: prometheus is not installed; installing Debian's prometheus package"
	echo "  (apt-get update; apt-get install --no-install-recommends prometheus: prometheus and promtool)"
	if ! command -v apt-get >/dev/null; then
		echo "prometheus.sh: no apt-get here; install Prometheus 2.x yourself (https://prometheus.io/download/) and run this again" >&2
		exit 1
	fi
	sudo=()
	if [ "$(id -u)" -ne 0 ]; then
		if ! command -v sudo >/dev/null; then
			echo "prometheus.sh: installing needs root; run as root: apt-get install prometheus" >&2
			exit 1
		fi
		sudo=(sudo)
	fi
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus
	echo "prometheus.sh: installed $(prometheus --version 2>&1 | head -n 1)"
	echo "  (if systemd started the package's own service on :9090: sudo systemctl disable --now prometheus)"
fi

host=${addr%:*}
port=${addr##*:}
host=${host#[}
host=${host%]}
if (exec 3<>"/dev/tcp/${host:-127.0.0.1}/$port") 2>/dev/null; then
	echo "prometheus.sh: something already listens on $addr (Debian's prometheus service, which its package" >&2
	echo "  starts on :9090?). Stop it (sudo systemctl stop prometheus) or pick another address:" >&2
	echo "  make prometheus STATELAB_PROMETHEUS_ADDR=127.0.0.1:9091" >&2
	exit 1
fi

# The runner creates the file when the lab starts; the directory must exist
# now for Prometheus to watch it.
mkdir -p "$(dirname "$file_sd")"
file_sd_abs="$(cd "$(dirname "$file_sd")" && pwd)/$(basename "$file_sd")"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/statelab-prometheus.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
config="$tmp/prometheus.yml"
quoted=${file_sd_abs//\\/\\\\}
quoted=\"${quoted//\"/\\\"}\"
awk -v path="$quoted" '/# file_sd$/ { sub(/- .*/, "- " path); n++ } { print } END { exit n == 1 ? 0 : 1 }' \
	scripts/prometheus.yml >"$config" || {
	echo "prometheus.sh: scripts/prometheus.yml has no single line ending in \"# file_sd\" to point at $file_sd_abs" >&2
	exit 1
}
if command -v promtool >/dev/null; then
	promtool check config "$config" >/dev/null
fi

url="http://$addr"
cat <<EOF
Prometheus on $url/ : scrapes every 2s what the lab's runner lists in
  $file_sd_abs
  (start the lab in another terminal with make demo; the targets then show on $url/targets)

Queries to try on $url/graph :
  sum by (server) (rate(statelab_client_requests_total{outcome="ok"}[10s]))      successful requests/s per side
  sum by (server) (rate(statelab_client_sessions_lost_total[10s]))              sessions lost/s per side
  sum by (server, outcome) (rate(statelab_client_requests_total{outcome!="ok"}[10s]))
  histogram_quantile(0.99, sum by (server, le) (rate(statelab_client_request_duration_seconds_bucket[10s])))
  statelab_sessions_active                                                      sessions each stateful replica holds
  up{role="replica"}                                                            the replicas Prometheus sees

Grafana: import scripts/grafana-dashboard.json and pick this Prometheus as its data source.
Ctrl-C stops Prometheus and removes its data.

EOF
prometheus --config.file="$config" --storage.tsdb.path="$tmp/data" --web.listen-address="$addr" --log.level=warn "$@"

#!/usr/bin/env bash
# cluster-check.sh: the plugin in a real three-node OpenSearch 3.5.0 cluster on loopback.
#
# Unpacks the distribution (Maven's copy of org.opensearch.distribution.integ-test-zip:opensearch:
# 3.5.0:zip), installs the plugin zip the build made with the distribution's own bin/opensearch-plugin,
# starts three nodes (512 MB heap each), and then:
#   1. host A (one process) puts a 16K-token context of the shipped model into the cluster
#      (retroinfer store put --store http://127.0.0.1:PORT/INDEX; index with 1 replica);
#   2. host B (another process, no local store) finds it, loads it and decodes 32 tokens
#      (store get --generate 32): they must equal the 32 tokens of the same prompt from a local store;
#   3. stops one node (the one holding the primary) and repeats 2 through another node;
#   4. stops the whole cluster, starts it again and repeats 2.
# It stops every process it started (by pid), also on failure. As root, the nodes run as the
# unprivileged user of scripts/opensearch-test-user.sh (OpenSearch refuses root).
#
# Usage: opensearch-plugin/scripts/cluster-check.sh [WORK_DIR]    (default: a new /tmp directory)
# RETROINFER_KEEP_PACK=false: the index keeps no packs (index.retroinfer.keep_pack), so every get
# builds the context from its K/V vector fields.
# Prints one line per step with its time, and a summary table; exit 0 when every step matched.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
source scripts/find-jdk.sh >/dev/null
WORK="${1:-$(mktemp -d /tmp/retroinfer-cluster.XXXXXX)}"
mkdir -p "$WORK"
USER_OS="${RETROINFER_OPENSEARCH_USER:-retroinfer-os}"
INDEX=contexts
PIDS=()

log() { printf '[%5ds] %s\n' "$SECONDS" "$*"; }

stop_node() { # by pid: SIGTERM, then SIGKILL after 30 s
  local pid="$1"
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
  kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
  for pid in "${PIDS[@]}"; do [[ -n "$pid" ]] && stop_node "$pid"; done
}
trap cleanup EXIT

log "building the plugin zip and unpacking the distribution (Maven, offline when cached)"
mvn -B -q -ntp -o -pl opensearch-plugin -am -DskipTests process-test-classes >"$WORK/build.log" 2>&1 \
  || mvn -B -q -ntp -pl opensearch-plugin -am -DskipTests process-test-classes >"$WORK/build.log" 2>&1
DIST="$ROOT/opensearch-plugin/target/opensearch-dist/opensearch-3.5.0"
ZIP="$ROOT/opensearch-plugin/target/retroinfer-opensearch-plugin.zip"
( cd cli && [[ -f target/retroinfer.jar ]] ) || true
./retroinfer --help >/dev/null 2>&1 || true # builds the launcher's jar if needed

HOME_OS="$WORK/opensearch"
rm -rf "$HOME_OS"
cp -r "$DIST" "$HOME_OS"
export OPENSEARCH_JAVA_HOME="$JAVA_HOME"
"$HOME_OS/bin/opensearch-plugin" install --batch "file://$ZIP" >"$WORK/install.log" 2>&1
"$HOME_OS/bin/opensearch-keystore" create >/dev/null 2>&1 || true
if [[ "$(id -u)" -eq 0 ]]; then
  scripts/opensearch-test-user.sh
  chown -R "$USER_OS:" "$WORK"
  AS=(setpriv "--reuid=$USER_OS" "--regid=$USER_OS" --init-groups)
else
  AS=()
fi

# six free loopback ports (the kernel's choice), three for HTTP and three for the transport
read -r -a PORTS <<<"$(python3 -c '
import socket
socks = [socket.socket() for _ in range(6)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
')"
HTTP=("${PORTS[@]:0:3}")
TRANSPORT=("${PORTS[@]:3:3}")
SEEDS="127.0.0.1:${TRANSPORT[0]},127.0.0.1:${TRANSPORT[1]},127.0.0.1:${TRANSPORT[2]}"
start_node() { # i: starts node i in the background, records its pid
  local i="$1"
  mkdir -p "$WORK/data$i" "$WORK/logs$i"
  [[ "$(id -u)" -eq 0 ]] && chown "$USER_OS:" "$WORK/data$i" "$WORK/logs$i"
  OPENSEARCH_JAVA_OPTS="-Xms512m -Xmx512m" "${AS[@]}" "$HOME_OS/bin/opensearch" \
    -Ecluster.name=retroinfer-check -Enode.name="node$i" -Enetwork.host=127.0.0.1 \
    -Ehttp.port="${HTTP[$i]}" -Etransport.port="${TRANSPORT[$i]}" \
    -Ediscovery.seed_hosts="$SEEDS" -Ecluster.initial_cluster_manager_nodes=node0,node1,node2 \
    -Epath.data="$WORK/data$i" -Epath.logs="$WORK/logs$i" >"$WORK/node$i.out" 2>&1 &
  PIDS[$i]=$!
}
wait_health() { # port status nodes
  local port="$1" status="$2" nodes="$3"
  for _ in $(seq 240); do
    if curl -fsS "http://127.0.0.1:$port/_cluster/health?wait_for_status=$status&wait_for_nodes=$nodes&timeout=1s" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.5
  done
  echo "cluster-check: the cluster did not reach $status with $nodes nodes; see $WORK/logs*" >&2
  return 1
}

t0=$SECONDS
for i in 0 1 2; do start_node "$i"; done
wait_health "${HTTP[0]}" green 3
log "three nodes up in $((SECONDS - t0)) s"

# a 16K-token prompt of the shipped model: Python source from the haystack corpus
PROMPT="$WORK/prompt.py"
python3 - "$PROMPT" model/src/main/resources/org/retroinfer/model/eval/stdlib/*.zip <<'PY'
import sys, zipfile
out = bytearray()
for path in sys.argv[2:]:
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if name.endswith(".py") and len(out) < 16000:
                out += z.read(name)
if len(out) < 16000:
    sys.exit("the haystack corpus gave only %d bytes of Python, not 16000" % len(out))
open(sys.argv[1], "wb").write(bytes(out[:16000]))
PY
LOCAL="$WORK/local-store"
EMPTY="$WORK/empty-store"

if [[ "${RETROINFER_KEEP_PACK:-true}" == false ]]; then
  # an index that keeps no packs: a one-token context creates it, then the setting goes off, so
  # that the gets below build the context from its vector fields
  ./retroinfer store put --store "http://127.0.0.1:${HTTP[0]}/$INDEX" --text "#" --json >/dev/null
  curl -sf -XPUT "http://127.0.0.1:${HTTP[0]}/$INDEX/_settings" -H 'Content-Type: application/json' \
    -d '{"index.retroinfer.keep_pack": false}' >/dev/null
  log "the index keeps no packs (index.retroinfer.keep_pack=false)"
fi
t=$SECONDS
./retroinfer store put --store "http://127.0.0.1:${HTTP[0]}/$INDEX" --file "$PROMPT" --json >"$WORK/put-remote.json"
log "host A: put into the cluster in $((SECONDS - t)) s: $(grep -o '"seconds" : [0-9.]*' "$WORK/put-remote.json")"
./retroinfer store put --store "$LOCAL" --file "$PROMPT" --json >"$WORK/put-local.json"
./retroinfer store get --store "$LOCAL" --file "$PROMPT" --generate 32 --json >"$WORK/get-local.json"
./retroinfer store put --store "$EMPTY" --text "#" --json >/dev/null # a store without this prompt
./retroinfer store get --store "$EMPTY" --file "$PROMPT" --generate 32 --json >"$WORK/get-recompute.json"
generated() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["generated"])' "$1"; }
field() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, {"d": d}))' "$1" "$2"; }
EXPECTED="$(generated "$WORK/get-local.json")"

check_get() { # label port
  local label="$1" port="$2" out="$WORK/get-$1.json"
  ./retroinfer store get --store "http://127.0.0.1:$port/$INDEX" --file "$PROMPT" --generate 32 --json >"$out"
  local got; got="$(generated "$out")"
  if [[ "$got" != "$EXPECTED" ]]; then
    echo "cluster-check: $label: the cluster's context decoded other tokens than the local store's" >&2
    echo "  local:   $EXPECTED" >&2; echo "  cluster: $got" >&2
    exit 1
  fi
  log "host B ($label, via node on $port): reused $(field "$out" 'd["reusedTokens"]') tokens, first token after $(field "$out" 'round(d["firstTokenSeconds"], 3)') s (remote lookup $(field "$out" 'round(d["remote"]["lookupMs"])') ms, fetch $(field "$out" 'round(d["remote"]["fetchMs"])') ms of $(field "$out" 'd["remote"]["fetchedBytes"]') bytes), the same 32 tokens as the local store"
}

check_get all-nodes "${HTTP[1]}"
# the node that holds the primary goes
PRIMARY_NODE="$(curl -fsS "http://127.0.0.1:${HTTP[0]}/_cat/shards/$INDEX?h=prirep,node" | awk '$1=="p"{print $2; exit}')"
i="${PRIMARY_NODE#node}"
stop_node "${PIDS[$i]}"; PIDS[$i]=""
ALIVE=$(( (i + 1) % 3 ))
wait_health "${HTTP[$ALIVE]}" yellow 2
log "stopped $PRIMARY_NODE (it held the primary); two nodes left"
check_get one-node-down "${HTTP[$ALIVE]}"

for j in 0 1 2; do [[ -n "${PIDS[$j]:-}" ]] && stop_node "${PIDS[$j]}"; PIDS[$j]=""; done
log "stopped the whole cluster"
t0=$SECONDS
for j in 0 1 2; do start_node "$j"; done
wait_health "${HTTP[2]}" green 3
log "restarted in $((SECONDS - t0)) s"
check_get after-restart "${HTTP[2]}"

echo
echo "summary (16K-token context of the shipped model, $(field "$WORK/put-local.json" 'd["context"]["tokens"]') tokens):"
printf '  %-34s %s\n' "put into the cluster (whole command)" "$(field "$WORK/put-remote.json" 'round(d["seconds"], 2)') s (prefill included)"
printf '  %-34s %s\n' "put: the pack sent" "$(field "$WORK/put-remote.json" 'd["sent"]["bytes"]') bytes in $(field "$WORK/put-remote.json" 'round(d["sent"]["sendMs"])') ms ($(field "$WORK/put-remote.json" 'round(d["sent"]["sendMBPerSecond"], 1)') MB/s; packing $(field "$WORK/put-remote.json" 'round(d["sent"]["packMs"])') ms)"
for g in all-nodes one-node-down after-restart; do
  printf '  %-34s %s\n' "get ($g)" "lookup $(field "$WORK/get-$g.json" 'round(d["remote"]["lookupMs"])') ms, transfer $(field "$WORK/get-$g.json" 'round(d["remote"]["fetchMs"])') ms, first token $(field "$WORK/get-$g.json" 'round(d["firstTokenSeconds"], 3)') s"
done
printf '  %-34s %s\n' "first token, cluster (after restart)" "$(field "$WORK/get-after-restart.json" 'round(d["firstTokenSeconds"], 3)') s"
printf '  %-34s %s\n' "first token, local store" "$(field "$WORK/get-local.json" 'round(d["firstTokenSeconds"], 3)') s"
printf '  %-34s %s\n' "first token, recomputing the prefill" "$(field "$WORK/get-recompute.json" 'round(d["firstTokenSeconds"], 3)') s"
echo "cluster-check: every step decoded the local store's 32 tokens; work files in $WORK"

#!/usr/bin/env bash
# End-to-end scenario on a kind cluster, for machines with Docker:
#   build the three images -> kind cluster -> snapshot CRDs + controller -> helm install with the
#   reference service -> PVC -> pod writes a file -> VolumeSnapshot -> restore into a new PVC and
#   read the file back -> expand -> CRs reconciled and checked in the reference service's state
#   -> delete everything and check the cloud side is gone.
# Exits 77 (skipped) with a message when Docker (or its daemon), kind, kubectl, helm, git (kubectl
# fetches the snapshot manifests with it), curl or python3 is missing.
#
# Environment: CLUSTER (default cfs-csi-e2e), KIND_NODE_IMAGE, KEEP_CLUSTER=1 (leave it running).
set -euo pipefail

SKIP=77
missing=()
for tool in docker kind kubectl helm git curl python3; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
    echo "SKIP: kind scenario needs ${missing[*]} (not installed)" >&2
    exit "$SKIP"
fi
if ! docker info >/dev/null 2>&1; then
    echo "SKIP: kind scenario needs a running Docker daemon (docker info failed)" >&2
    exit "$SKIP"
fi

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CLUSTER=${CLUSTER:-cfs-csi-e2e}
KIND_NODE_IMAGE=${KIND_NODE_IMAGE:-kindest/node:v1.33.1}
SNAPSHOTTER_REF=v8.3.0
RELEASE=cfs-csi
SYSTEM_NS=kube-system
NS=cfs-e2e
TIMEOUT=300s

log() { printf '\n==> %s\n' "$*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
k() { kubectl --context "kind-$CLUSTER" "$@"; }

cleanup() {
    if [[ -n "${PORT_FORWARD_PID:-}" ]]; then kill "$PORT_FORWARD_PID" 2>/dev/null || true; fi
    if [[ "${KEEP_CLUSTER:-0}" != 1 ]]; then
        kind delete cluster --name "$CLUSTER"
    fi
}
trap cleanup EXIT

log "building images"
for target_image in driver:cfs-csi-driver operator:cfs-operator reference:cfs-reference; do
    docker build -f "$REPO/deploy/images/Dockerfile" --target "${target_image%%:*}" -t "${target_image#*:}:kind" "$REPO"
done

log "creating kind cluster $CLUSTER"
grep -qx "$CLUSTER" <<<"$(kind get clusters)" ||
    kind create cluster --name "$CLUSTER" --image "$KIND_NODE_IMAGE" --config "$REPO/deploy/kind/cluster.yaml"
kind load docker-image --name "$CLUSTER" cfs-csi-driver:kind cfs-operator:kind cfs-reference:kind

log "installing the snapshot CRDs and snapshot-controller ($SNAPSHOTTER_REF)"
k apply -k "https://github.com/kubernetes-csi/external-snapshotter/client/config/crd?ref=$SNAPSHOTTER_REF"
k apply -k "https://github.com/kubernetes-csi/external-snapshotter/deploy/kubernetes/snapshot-controller?ref=$SNAPSHOTTER_REF"

log "helm install (reference service enabled)"
helm --kube-context "kind-$CLUSTER" upgrade --install "$RELEASE" "$REPO/charts/cfs-csi" \
    --namespace "$SYSTEM_NS" --values "$REPO/deploy/kind/values.yaml" --wait --timeout 5m

# The reference service's admin API, for checking the cloud side of every step.
k -n "$SYSTEM_NS" port-forward "svc/$RELEASE-reference" 18080:8080 >/dev/null &
PORT_FORWARD_PID=$!
ADMIN_TOKEN=$(k -n "$SYSTEM_NS" get secret "$RELEASE-reference-admin" -o jsonpath='{.data.adminToken}' | base64 -d)
cloud_state() {
    curl -fsS --retry 10 --retry-connrefused -H "X-Admin-Token: $ADMIN_TOKEN" http://127.0.0.1:18080/_admin/state
}
# File system id behind a bound claim: volume ids are fs:<FileSystemId> (docs/ARCHITECTURE.md).
fs_id_of() {
    local pv
    pv=$(k -n "$NS" get pvc "$1" -o jsonpath='{.spec.volumeName}')
    k get pv "$pv" -o jsonpath='{.spec.csi.volumeHandle}' | cut -d: -f2
}

log "PVC -> pod writes a file"
k create namespace "$NS" --dry-run=client -o yaml | k apply -f -
k -n "$NS" apply -f "$REPO/deploy/examples/pvc-filesystem.yaml" -f "$REPO/deploy/examples/pod.yaml"
k -n "$NS" wait --for=jsonpath='{.status.phase}'=Bound pvc/cfs-data --timeout="$TIMEOUT"
k -n "$NS" wait --for=condition=Ready pod/cfs-writer --timeout="$TIMEOUT"
[[ $(k -n "$NS" exec cfs-writer -- cat /data/hello.txt) == "hello from cfs" ]] || fail "written file not read back"
FS_ORIGINAL=$(fs_id_of cfs-data)
grep -q "\"$FS_ORIGINAL\"" <<<"$(cloud_state)" || fail "$FS_ORIGINAL not in the reference state"
k -n "$SYSTEM_NS" get svc "mount-$FS_ORIGINAL" >/dev/null || fail "no mount-target Service for $FS_ORIGINAL"

log "VolumeSnapshot -> restore into a new PVC and read the file"
k -n "$NS" apply -f "$REPO/deploy/examples/volumesnapshot.yaml"
k -n "$NS" wait --for=jsonpath='{.status.readyToUse}'=true volumesnapshot/cfs-data-snap --timeout="$TIMEOUT"
CONTENT=$(k -n "$NS" get volumesnapshot cfs-data-snap -o jsonpath='{.status.boundVolumeSnapshotContentName}')
SNAPSHOT=$(k get volumesnapshotcontent "$CONTENT" -o jsonpath='{.status.snapshotHandle}')  # the CFS SnapshotId
grep -q "\"$SNAPSHOT\"" <<<"$(cloud_state)" || fail "snapshot $SNAPSHOT not in the reference state"
k -n "$NS" apply -f "$REPO/deploy/examples/pvc-restore.yaml"
k -n "$NS" apply -f - <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: cfs-reader
spec:
  containers:
    - name: reader
      image: busybox:1.37.0
      command: [sleep, "3600"]
      volumeMounts: [{name: data, mountPath: /data}]
  volumes:
    - name: data
      persistentVolumeClaim: {claimName: cfs-data-restored}
EOF
k -n "$NS" wait --for=condition=Ready pod/cfs-reader --timeout="$TIMEOUT"
[[ $(k -n "$NS" exec cfs-reader -- cat /data/hello.txt) == "hello from cfs" ]] || fail "restored file differs"
FS_RESTORED=$(fs_id_of cfs-data-restored)

log "expand the original claim to 20Gi"
k -n "$NS" patch pvc cfs-data --type=merge -p '{"spec":{"resources":{"requests":{"storage":"20Gi"}}}}'
k -n "$NS" wait --for=jsonpath='{.status.capacity.storage}'=20Gi pvc/cfs-data --timeout="$TIMEOUT"

log "custom resources: a permission group, and a snapshot policy that selects cfs-data by labels"
# The examples that name fixed cloud ids (adoption, fileSystemIds) cannot work against a fresh
# reference service; the label-selector policy binds the file system this scenario created.
k label namespace "$NS" env=prod --overwrite
k -n "$NS" label pvc cfs-data backup=nightly --overwrite
CUSTOM_RESOURCES=(-f "$REPO/deploy/examples/cfs-permissiongroup.yaml"
                  -f "$REPO/deploy/examples/cfs-autosnapshotpolicy-pvc-selector.yaml")
k apply "${CUSTOM_RESOURCES[@]}"
k wait --for=condition=Ready "${CUSTOM_RESOURCES[@]}" --timeout="$TIMEOUT"
k wait --for=jsonpath='{.status.fileSystemIds[0]}'="$FS_ORIGINAL" cfsautosnapshotpolicy/prod-nightly --timeout="$TIMEOUT"
PGROUP=$(k get cfspermissiongroup web-tier -o jsonpath='{.status.pGroupId}')
POLICY=$(k get cfsautosnapshotpolicy prod-nightly -o jsonpath='{.status.autoSnapshotPolicyId}')
# The cloud side: the group with the example's three rules, the policy bound to the file system.
cloud_state | python3 -c '
import json, sys
state, (pgroup, policy, fs) = json.load(sys.stdin), sys.argv[1:]
rules = [rule for rule in state["Rules"] if rule["PGroupId"] == pgroup]
bindings = {(b["AutoSnapshotPolicyId"], b["FileSystemId"]) for b in state["Bindings"]}
sys.exit(0 if len(rules) == 3 and (policy, fs) in bindings else 1)' "$PGROUP" "$POLICY" "$FS_ORIGINAL" ||
    fail "the reference state lacks $PGROUP with 3 rules or the binding $POLICY -> $FS_ORIGINAL"
k delete "${CUSTOM_RESOURCES[@]}" --wait --timeout="$TIMEOUT"
STATE=$(cloud_state)
for id in "$PGROUP" "$POLICY"; do
    if grep -q "\"$id\"" <<<"$STATE"; then fail "$id still in the reference state after its resource was deleted"; fi
done

log "delete: pods, snapshot and claims; the snapshot and file systems must go too"
k -n "$NS" delete pod cfs-writer cfs-reader --wait --timeout="$TIMEOUT"
k -n "$NS" delete volumesnapshot cfs-data-snap --wait --timeout="$TIMEOUT"
k -n "$NS" delete pvc cfs-data cfs-data-restored --wait --timeout="$TIMEOUT"
for id in "$SNAPSHOT" "$FS_ORIGINAL" "$FS_RESTORED"; do
    for _ in $(seq 60); do grep -q "\"$id\"" <<<"$(cloud_state)" || continue 2; sleep 5; done
    fail "$id still exists in the reference state after its Kubernetes object was deleted"
done

log "kind scenario passed"

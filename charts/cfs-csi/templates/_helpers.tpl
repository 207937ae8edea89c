{{/* Names, labels and the pieces every component shares. */}}

{{- define "cfs-csi.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "cfs-csi.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Selector labels of one component: include "cfs-csi.selectorLabels" (list . "controller") */}}
{{- define "cfs-csi.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "cfs-csi.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "cfs-csi.labels" -}}
{{- $root := index . 0 -}}
{{ include "cfs-csi.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" $root.Chart.Name $root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
app.kubernetes.io/part-of: cfs-csi
{{- end -}}

{{/* Image reference: include "cfs-csi.image" (list . "driver"); a digest pins it (repo:tag@digest). */}}
{{- define "cfs-csi.image" -}}
{{- $root := index . 0 -}}
{{- $image := index $root.Values.images (index . 1) -}}
{{- printf "%s:%s" $image.repository (default $root.Chart.AppVersion $image.tag) -}}
{{- with $image.digest }}@{{ . }}{{ end -}}
{{- end -}}

{{/* Pull policy of one image: its own pullPolicy, else the chart-wide imagePullPolicy. */}}
{{- define "cfs-csi.imagePullPolicy" -}}
{{- $root := index . 0 -}}
{{- $image := index $root.Values.images (index . 1) -}}
{{- default $root.Values.imagePullPolicy $image.pullPolicy -}}
{{- end -}}

{{- define "cfs-csi.credentialsSecret" -}}
{{- default (printf "%s-credentials" (include "cfs-csi.fullname" .)) .Values.credentials.existingSecret -}}
{{- end -}}

{{- define "cfs-csi.referenceName" -}}
{{- printf "%s-reference" (include "cfs-csi.fullname" .) -}}
{{- end -}}

{{/* The CFS API endpoint: the in-cluster reference service when enabled, else the cloud. */}}
{{- define "cfs-csi.endpoint" -}}
{{- if .Values.reference.enabled -}}
{{- printf "http://%s.%s.svc:%d" (include "cfs-csi.referenceName" .) .Release.Namespace (int .Values.reference.port) -}}
{{- else -}}
{{- .Values.cloud.endpoint -}}
{{- end -}}
{{- end -}}

{{/* Subdir mode mounts file systems in the controller: see values controller.subdirMounts. */}}
{{- define "cfs-csi.controllerMounts" -}}
{{- if or .Values.controller.subdirMounts .Values.storageClasses.subdir.enabled -}}true{{- end -}}
{{- end -}}

{{/* Environment of every program that calls the CFS API (controller, operator). */}}
{{- define "cfs-csi.cloudEnv" -}}
- name: CFS_ENDPOINT
  value: {{ include "cfs-csi.endpoint" . | quote }}
- name: TENCENTCLOUD_REGION
  value: {{ .Values.cloud.region | quote }}
- name: CFS_CREDENTIALS_DIR
  value: /etc/cfs-csi/credentials
{{- end -}}

{{- define "cfs-csi.credentialsMount" -}}
- name: credentials
  mountPath: /etc/cfs-csi/credentials
  readOnly: true
{{- end -}}

{{- define "cfs-csi.credentialsVolume" -}}
- name: credentials
  secret:
    secretName: {{ include "cfs-csi.credentialsSecret" . }}
    # Every key becomes a file: secretId, secretKey and, when present, sessionToken.
    defaultMode: 288  # 0440: owner and the pod's fsGroup only
{{- end -}}

{{/* Hardening of every container that needs no privilege. */}}
{{- define "cfs-csi.restrictedSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/*
Shared tail of every sidecar talking to the driver socket in /csi:
include "cfs-csi.socketSidecar" (dict "resources" .Values.controller.sidecarResources "asRoot" false)
asRoot: node sidecars create sockets in root-owned host directories.
*/}}
{{- define "cfs-csi.socketSidecar" -}}
securityContext:
  {{- if .asRoot }}
  runAsUser: 0
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities:
    drop: [ALL]
  {{- else }}
  {{- include "cfs-csi.restrictedSecurityContext" . | nindent 2 }}
  {{- end }}
resources:
  {{- toYaml .resources | nindent 2 }}
volumeMounts:
  - name: socket-dir
    mountPath: /csi
{{- end -}}

{{- define "cfs-csi.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Scheduling keys shared by every workload: include "cfs-csi.scheduling" .Values.controller */}}
{{- define "cfs-csi.scheduling" -}}
{{- with .priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Whole seconds of a duration value (schema pattern ^[0-9]+(ms|s|m|h)$), rounded down. */}}
{{- define "cfs-csi.durationSeconds" -}}
{{- $number := regexFind "^[0-9]+" . | int -}}
{{- $unit := regexFind "[a-z]+$" . -}}
{{- if eq $unit "ms" -}}{{ div $number 1000 }}{{- else -}}{{ mul $number (get (dict "s" 1 "m" 60 "h" 3600) $unit) }}{{- end -}}
{{- end -}}

{{/* The kubelet waits this long after SIGTERM: the driver's shutdown grace plus room to exit. */}}
{{- define "cfs-csi.terminationGracePeriod" -}}
terminationGracePeriodSeconds: {{ add (int .shutdownGrace) 15 }}
{{- end -}}

{{- define "cfs-csi.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The secret parameters of StorageClasses / VolumeSnapshotClass: include "cfs-csi.secretParams" (list . "provisioner" "controller-expand") */}}
{{- define "cfs-csi.secretParams" -}}
{{- $root := index . 0 -}}
{{- if $root.Values.credentials.passToSidecars -}}
{{- range $kind := rest . }}
csi.storage.k8s.io/{{ $kind }}-secret-name: {{ include "cfs-csi.credentialsSecret" $root }}
csi.storage.k8s.io/{{ $kind }}-secret-namespace: {{ $root.Release.Namespace }}
{{- end }}
{{- end -}}
{{- end -}}

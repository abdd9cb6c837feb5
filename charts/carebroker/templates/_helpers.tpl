{{/*
Names, labels and the pieces every role's pod shares: the CAREBROKER_* environment
built from `settings`, and the volumes that environment points into.
*/}}

{{- define "carebroker.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-wide name; role resources are "<fullname>-<role>", so leave room for the suffix. */}}
{{- define "carebroker.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 48 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "carebroker.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "carebroker.selectorLabels" -}}
app.kubernetes.io/name: {{ include "carebroker.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "carebroker.labels" -}}
helm.sh/chart: {{ include "carebroker.chart" . }}
{{ include "carebroker.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: carebroker
{{- end }}

{{/* The roles in broker/settings.py ROLES order; `roles` in values may only name these. */}}
{{- define "carebroker.roles" -}}
{{- list "mllp" "fhir" "files" "relay" "router" "delivery" "audit" "console" | toJson }}
{{- end }}

{{- define "carebroker.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "carebroker.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "carebroker.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Settings of one role: `settings` with the role's own `settings` laid over it,
returned as JSON (templates can only return text). Argument: dict root, role.
*/}}
{{- define "carebroker.roleSettings" -}}
{{- $spec := get .root.Values.roles .role }}
{{- mergeOverwrite (deepCopy .root.Values.settings) (deepCopy (default dict $spec.settings)) | toJson }}
{{- end }}

{{/*
Settings whose value is a file (dotted: a nested model's field): a Secret
reference for these is mounted and its path passed (the others' Secret
references become secretKeyRef variables).
*/}}
{{- define "carebroker.fileSettings" -}}
{{- list "kafka_ssl_cafile" "mllp.tls_cert" "mllp.tls_key" "mllp.tls_client_ca" "audit_syslog_ca" "audit_syslog_cert" "audit_syslog_key" "mssante.cert" "mssante.key" "mssante.ca" | toJson }}
{{- end }}

{{/*
The nested models of Settings (`mllp`, `console`, `fhir`, `files`, `ins`, `mssante`):
each is a map of settings passed as CAREBROKER_<GROUP>__<NAME>. Those of roleGroups
belong to the role of the same name; `mssante` reaches the delivery role only; the
others (`ins`) reach every role.
*/}}
{{- define "carebroker.settingGroups" -}}
{{- list "mllp" "console" "fhir" "files" "ins" "mssante" | toJson }}
{{- end }}

{{- define "carebroker.roleGroups" -}}
{{- list "mllp" "console" "fhir" "files" | toJson }}
{{- end }}

{{/*
Whether a setting reaches a role: the syslog client key only the audit role, and
a nested model's settings (the MLLP TLS private key, the console's OIDC client
secret among them) only the role they belong to. Argument: dict key (dotted), role.
*/}}
{{- define "carebroker.settingReaches" -}}
{{- $groups := include "carebroker.roleGroups" . | fromJsonArray }}
{{- $group := first (splitList "." .key) }}
{{- if and (eq .key "audit_syslog_key") (ne .role "audit") }}
{{- else if and (eq $group "mssante") (ne .role "delivery") }}
{{- else if and (has $group $groups) (ne $group "mssante") (ne .role $group) }}
{{- else }}yes{{- end }}
{{- end }}

{{/*
A Secret reference set at a dotted path of a settings map, as JSON; empty when the
setting is null. Argument: dict settings, key.
*/}}
{{- define "carebroker.secretAt" -}}
{{- $value := .settings }}
{{- range $part := splitList "." .key }}
{{- $value = get (default dict $value) $part }}
{{- end }}
{{- if $value }}{{ toJson $value }}{{- end }}
{{- end }}

{{- define "carebroker.secretMountPath" -}}
{{- printf "/etc/carebroker/secrets/%s" (. | replace "." "_") }}
{{- end }}

{{- define "carebroker.partnersConfigMap" -}}
{{- $config := .Values.settings.config }}
{{- if and $config.directory $config.existingConfigMap }}
{{- fail "settings.config: set `directory` or `existingConfigMap`, not both" }}
{{- end }}
{{- if $config.existingConfigMap }}{{ $config.existingConfigMap }}{{- else if $config.directory }}{{ include "carebroker.fullname" . }}-partners{{- end }}
{{- end }}

{{/*
A plain setting as the environment carries it. YAML numbers reach templates as
float64, which print as 3.3554432e+07: integral ones are printed as integers so
pydantic reads them back.
*/}}
{{- define "carebroker.scalar" -}}
{{- if and (kindIs "float64" .) (eq (float64 (int64 .)) .) }}{{ int64 . }}{{- else }}{{ . }}{{- end }}
{{- end }}

{{/*
CAREBROKER_* variables of one role, one per setting that is not null.
Argument: dict root, role, settings (the role's merged settings).
*/}}
{{- define "carebroker.settingsEnv" -}}
{{- include "carebroker.settingsEnvOf" (dict "root" .root "role" .role "settings" .settings "path" "") }}
{{- end }}

{{/*
The variables of one level of settings: the top (`path` ""), or a nested model
(`path` "console."), whose fields pydantic-settings reads as
CAREBROKER_CONSOLE__<NAME> (env_nested_delimiter "__").
*/}}
{{- define "carebroker.settingsEnvOf" -}}
{{- $files := include "carebroker.fileSettings" . | fromJsonArray }}
{{- $groups := include "carebroker.settingGroups" . | fromJsonArray }}
{{- $role := .role }}
{{- range $key := keys .settings | sortAlpha }}
{{- $value := get $.settings $key }}
{{- $path := printf "%s%s" $.path $key }}
{{- $name := printf "CAREBROKER_%s" ($path | replace "." "__" | upper) }}
{{- if not (include "carebroker.settingReaches" (dict "key" $path "role" $role)) }}
{{- else if eq $path "config" }}
{{- if include "carebroker.partnersConfigMap" $.root }}
- name: {{ $name }}
  value: {{ printf "/etc/carebroker/partners/%s" $value.key | quote }}
{{- end }}
{{- else if kindIs "invalid" $value }}
{{- else if has $path $groups }}
{{- include "carebroker.settingsEnvOf" (dict "root" $.root "role" $role "settings" $value "path" (printf "%s." $path)) }}
{{- else if kindIs "map" $value }}
{{- if not (and $value.secretName $value.key) }}
{{- fail (printf "settings.%s: a Secret reference needs secretName and key" $path) }}
{{- end }}
{{- if has $path $files }}
- name: {{ $name }}
  value: {{ printf "%s/%s" (include "carebroker.secretMountPath" $path) $value.key | quote }}
{{- else }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ $value.secretName | quote }}
      key: {{ $value.key | quote }}
{{- end }}
{{- else }}
- name: {{ $name }}
  value: {{ include "carebroker.scalar" $value | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* Volumes of one role's pod. Argument: dict root, role, settings. */}}
{{- define "carebroker.volumes" -}}
{{- $files := include "carebroker.fileSettings" . | fromJsonArray }}
- name: tmp
  emptyDir: {}
{{- with include "carebroker.partnersConfigMap" .root }}
- name: partners
  configMap:
    name: {{ . | quote }}
{{- end }}
{{- range $key := $files }}
{{- $raw := include "carebroker.secretAt" (dict "settings" $.settings "key" $key) }}
{{- if and $raw (include "carebroker.settingReaches" (dict "key" $key "role" $.role)) }}
{{- $value := $raw | fromJson }}
- name: {{ $key | replace "_" "-" | replace "." "-" }}
  secret:
    secretName: {{ $value.secretName | quote }}
    items:
      - key: {{ $value.key | quote }}
        path: {{ $value.key | quote }}
{{- end }}
{{- end }}
{{- if eq .role "delivery" }}
{{- range .root.Values.partnerCredentials }}
- name: {{ printf "partner-%s" .secretName | trunc 63 | trimSuffix "-" }}
  secret:
    secretName: {{ .secretName | quote }}
{{- end }}
{{- end }}
{{- if and (eq .role "files") .settings.files.directory }}
{{- if not .root.Values.roles.files.dropVolume }}
{{- fail "settings.files.directory needs roles.files.dropVolume: the volume the labs' files arrive on" }}
{{- end }}
- name: drop
  {{- toYaml .root.Values.roles.files.dropVolume | nindent 2 }}
{{- end }}
{{- with .root.Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Mounts matching carebroker.volumes. */}}
{{- define "carebroker.volumeMounts" -}}
{{- $files := include "carebroker.fileSettings" . | fromJsonArray }}
- name: tmp
  mountPath: /tmp
{{- if include "carebroker.partnersConfigMap" .root }}
- name: partners
  mountPath: /etc/carebroker/partners
  readOnly: true
{{- end }}
{{- range $key := $files }}
{{- $raw := include "carebroker.secretAt" (dict "settings" $.settings "key" $key) }}
{{- if and $raw (include "carebroker.settingReaches" (dict "key" $key "role" $.role)) }}
{{- $value := $raw | fromJson }}
- name: {{ $key | replace "_" "-" | replace "." "-" }}
  mountPath: {{ include "carebroker.secretMountPath" $key | quote }}
  readOnly: true
{{- end }}
{{- end }}
{{- if eq .role "delivery" }}
{{- range .root.Values.partnerCredentials }}
- name: {{ printf "partner-%s" .secretName | trunc 63 | trimSuffix "-" }}
  mountPath: {{ printf "/etc/carebroker/partner-credentials/%s" .secretName | quote }}
  readOnly: true
{{- end }}
{{- end }}
{{- if and (eq .role "files") .settings.files.directory }}
- name: drop
  mountPath: {{ .settings.files.directory | quote }}
{{- end }}
{{- with .root.Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "carebroker.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "carebroker.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end }}

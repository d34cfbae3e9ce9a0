{{/*
Names and labels, in the prometheus-community idiom: every name is truncated to 63 characters (the DNS
label limit) and trimmed of a trailing "-", so a long release name cannot produce an invalid object.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "mintplane.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object name: fullnameOverride, else "<release>" when the release name already
contains the chart name, else "<release>-<chart>".
*/}}
{{- define "mintplane.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* "name-version" for the helm.sh/chart label ("+" is not allowed in label values). */}}
{{- define "mintplane.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object of the release. */}}
{{- define "mintplane.labels" -}}
helm.sh/chart: {{ include "mintplane.chart" . }}
{{ include "mintplane.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mintplane
{{- end }}

{{/* Labels that select the release's pods; immutable once a Deployment exists, so never add to them. */}}
{{- define "mintplane.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mintplane.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Name of one component's objects: "<fullname>-<component>". The full name is shortened, never the component,
so a long release name cannot make two components' names collide. Call with (dict "root" $ "name" "auth").
*/}}
{{- define "mintplane.componentName" -}}
{{- $room := sub 62 (len .name) | int }}
{{- printf "%s-%s" (include "mintplane.fullname" .root | trunc $room | trimSuffix "-") .name }}
{{- end }}

{{/* Labels of one component's objects. Call with (dict "root" $ "name" "auth"). */}}
{{- define "mintplane.componentLabels" -}}
{{ include "mintplane.labels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{/* Selector labels of one component's pods. Call with (dict "root" $ "name" "auth"). */}}
{{- define "mintplane.componentSelectorLabels" -}}
{{ include "mintplane.selectorLabels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{/* The image reference: repository@digest when a digest is set, else repository:tag (tag defaults to appVersion). */}}
{{- define "mintplane.image" -}}
{{- $image := .Values.image }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (default .Chart.AppVersion $image.tag) }}
{{- end }}
{{- end }}

{{/* ServiceAccount of the services, the gateway and the migration Job. */}}
{{- define "mintplane.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mintplane.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* ServiceAccount of the operator. */}}
{{- define "mintplane.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "mintplane.componentName" (dict "root" . "name" "operator")) .Values.operator.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Name of cluster-scoped objects (ClusterRole, ClusterRoleBinding). Two releases of the same name in two
namespaces would otherwise share (and fight over) one ClusterRole, so the namespace is part of the name;
past 63 characters a hash of the full name keeps it unique.
*/}}
{{- define "mintplane.clusterObjectName" -}}
{{- $full := printf "%s-%s-operator" .Release.Namespace (include "mintplane.fullname" .) }}
{{- if le (len $full) 63 }}
{{- $full }}
{{- else }}
{{- printf "%s-%s" ($full | trunc 54 | trimSuffix "-") ($full | sha256sum | trunc 8) }}
{{- end }}
{{- end }}

{{/* The Secret holding connection strings; rendering fails with a clear message when it is not named. */}}
{{- define "mintplane.secretName" -}}
{{- required "secrets.existingSecret is required: create a Secret with the connection strings (see values.yaml) and pass --set secrets.existingSecret=<name>" .Values.secrets.existingSecret }}
{{- end }}

{{/* Name of the ConfigMap of non-secret settings. */}}
{{- define "mintplane.configMapName" -}}
{{- printf "%s-config" (include "mintplane.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The namespaces the operator watches when its RBAC is namespaced: the release namespace first, then watchNamespaces. */}}
{{- define "mintplane.operator.namespaces" -}}
{{- $namespaces := list .Release.Namespace }}
{{- range .Values.operator.rbac.watchNamespaces }}
{{- if not (has . $namespaces) }}
{{- $namespaces = append $namespaces . }}
{{- end }}
{{- end }}
{{- toJson $namespaces }}
{{- end }}

{{/*
Secret environment variables of a component: one secretKeyRef per setting listed in its secretEnv.
Call with (dict "root" $ "secretEnv" (list "pgDsn")).
*/}}
{{- define "mintplane.secretEnv" -}}
{{- $root := .root }}
{{- range .secretEnv }}
{{- $key := get $root.Values.secrets.keys . }}
{{- if not $key }}
{{- fail (printf "secretEnv lists %q, which secrets.keys does not define" .) }}
{{- end }}
- name: {{ include "mintplane.settingEnvName" . }}
  valueFrom:
    secretKeyRef:
      name: {{ include "mintplane.secretName" $root }}
      key: {{ $key }}
      {{- if has . ($root.Values.secrets.optional | default list) }}
      optional: true
      {{- end }}
{{- end }}
{{- end }}

{{/* The MINTPLANE_* variable of a setting named in secrets.keys: pgDsn -> MINTPLANE_PG_DSN. */}}
{{- define "mintplane.settingEnvName" -}}
{{- printf "MINTPLANE_%s" (snakecase . | upper) }}
{{- end }}

{{/*
Name of the migration Job. As a hook it keeps one name (before-hook-creation replaces the previous run);
as a plain Job it is named per revision, because a Job's pod template cannot change on upgrade.
*/}}
{{- define "mintplane.migrations.jobName" -}}
{{- $name := include "mintplane.componentName" (dict "root" . "name" "migrations") }}
{{- if .Values.migrations.hook }}
{{- $name }}
{{- else }}
{{- printf "%s-%d" ($name | trunc 55 | trimSuffix "-") .Release.Revision }}
{{- end }}
{{- end }}

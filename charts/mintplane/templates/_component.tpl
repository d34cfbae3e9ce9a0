{{/*
The one shape every component is deployed from: the eight gRPC services (templates/services.yaml ranges
over .Values.services), the gateway and the operator. Each define takes a dict:

  root  the chart's top-level context ($)
  name  the component name ("auth", "chain-registry", "gateway", "operator"); objects are "<fullname>-<name>"
  kind  "grpc" (native gRPC health probes), "http" (the gateway) or "operator" (Kopf)
  c     the component's values merged over .Values.defaults (see mintplane.component.values)
*/}}

{{/* A component's values merged over .Values.defaults, as YAML (callers use `| fromYaml`). */}}
{{- define "mintplane.component.values" -}}
{{- toYaml (merge (deepCopy .cfg) (deepCopy .root.Values.defaults)) }}
{{- end }}

{{/* The container command of a component: `python -m <module>`, or the operator's `command` override. */}}
{{- define "mintplane.component.command" -}}
{{- if and (eq .kind "operator") .c.command }}
{{- toJson .c.command }}
{{- else }}
{{- toJson (list "python" "-m" .c.module) }}
{{- end }}
{{- end }}

{{/*
Settings of the operator (mintplane.operator.settings, MINTPLANE_OPERATOR_*): what it watches, its liveness
endpoint and what the indexer workloads it creates run with (its upstreams come from operator.upstreams).
*/}}
{{- define "mintplane.operator.env" -}}
{{- $root := .root }}
{{- $values := $root.Values }}
- name: MINTPLANE_OPERATOR_NAMESPACES
  value: {{ ternary "" (include "mintplane.operator.namespaces" $root | fromJsonArray | join ",") (eq $values.operator.rbac.scope "cluster") | quote }}
- name: MINTPLANE_OPERATOR_LIVENESS_ENDPOINT
  value: {{ printf "http://0.0.0.0:%v/healthz" .c.healthPort | quote }}
- name: MINTPLANE_OPERATOR_INDEXER_IMAGE
  value: {{ include "mintplane.image" $root | quote }}
- name: MINTPLANE_OPERATOR_IMAGE_PULL_POLICY
  value: {{ $values.image.pullPolicy | quote }}
- name: MINTPLANE_OPERATOR_INDEXER_ENV_SECRET
  value: {{ default (include "mintplane.secretName" $root) $values.operator.indexerEnvSecret | quote }}
- name: MINTPLANE_OPERATOR_INDEXER_SERVICE_ACCOUNT
  value: {{ include "mintplane.serviceAccountName" $root | quote }}
- name: MINTPLANE_OPERATOR_LOG_LEVEL
  value: {{ $values.config.logLevel | quote }}
- name: MINTPLANE_OPERATOR_LOG_JSON
  value: {{ $values.config.logJson | toString | quote }}
{{- end }}

{{/* The enabled services a component calls, as JSON [{env, service, address, port}], from its upstreams. */}}
{{- define "mintplane.component.upstreams" -}}
{{- $root := .root }}
{{- $found := list }}
{{- range $env, $service := .c.upstreams }}
{{- $target := get $root.Values.services $service }}
{{- if not $target }}
{{- fail (printf "upstreams: %s names %q, which is not a service of this chart" $env $service) }}
{{- end }}
{{- if $target.enabled }}
{{- $address := printf "%s:%v" (include "mintplane.componentName" (dict "root" $root "name" $service)) $target.port }}
{{- $found = append $found (dict "env" $env "service" $service "address" $address "port" $target.port) }}
{{- end }}
{{- end }}
{{- toJson $found }}
{{- end }}

{{/* Probe handler of a component: native gRPC health for services, HTTP for the gateway and operator. */}}
{{- define "mintplane.component.probeHandler" -}}
{{- if eq .kind "grpc" }}
grpc:
  port: {{ .c.port }}
{{- else if eq .kind "http" }}
httpGet:
  path: {{ ternary .c.readinessPath .c.livenessPath (eq .probe "readiness") }}
  port: http
{{- else }}
httpGet:
  path: /healthz
  port: health
{{- end }}
{{- end }}

{{- define "mintplane.component.deployment" -}}
{{- $root := .root }}
{{- $c := .c }}
{{- $kind := .kind }}
{{- $isOperator := eq $kind "operator" }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "mintplane.componentName" . }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "mintplane.componentLabels" . | nindent 4 }}
spec:
  {{- if not (and $c.autoscaling.enabled (not $isOperator)) }}
  replicas: {{ $c.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  {{- if $isOperator }}
  # Kopf runs standalone: two operator pods must never overlap, even during a rollout.
  strategy:
    type: Recreate
  {{- else }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 25%
      maxUnavailable: 0
  {{- end }}
  selector:
    matchLabels:
      {{- include "mintplane.componentSelectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "mintplane.componentSelectorLabels" . | nindent 8 }}
        {{- with $c.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        # Roll the pods when the non-secret settings change.
        checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
        {{- with $c.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      {{- if $isOperator }}
      serviceAccountName: {{ include "mintplane.operator.serviceAccountName" $root }}
      automountServiceAccountToken: true
      {{- else }}
      serviceAccountName: {{ include "mintplane.serviceAccountName" $root }}
      automountServiceAccountToken: {{ $root.Values.serviceAccount.automountServiceAccountToken }}
      {{- end }}
      # Service links would inject <SERVICE>_PORT-style variables, some of which start with MINTPLANE_.
      enableServiceLinks: false
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $c.podSecurityContext | nindent 8 }}
      {{- with $c.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      terminationGracePeriodSeconds: {{ $c.terminationGracePeriodSeconds }}
      {{- with $c.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $c.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $c.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $c.topologySpreadConstraints }}
      topologySpreadConstraints:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ .name }}
          image: {{ include "mintplane.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command: {{ include "mintplane.component.command" . }}
          ports:
            {{- if eq $kind "grpc" }}
            - name: grpc
              containerPort: {{ $c.port }}
              protocol: TCP
            {{- if $root.Values.metrics.enabled }}
            - name: metrics
              containerPort: {{ $root.Values.metrics.port }}
              protocol: TCP
            {{- end }}
            {{- else if eq $kind "http" }}
            - name: http
              containerPort: {{ $c.port }}
              protocol: TCP
            {{- else }}
            - name: health
              containerPort: {{ $c.healthPort }}
              protocol: TCP
            {{- end }}
          envFrom:
            - configMapRef:
                name: {{ include "mintplane.configMapName" $root }}
          env:
            {{- if eq $kind "grpc" }}
            - name: MINTPLANE_GRPC_HOST
              value: "0.0.0.0"
            - name: MINTPLANE_GRPC_PORT
              value: {{ $c.port | quote }}
            {{- if $root.Values.metrics.enabled }}
            - name: MINTPLANE_METRICS_HOST
              value: "0.0.0.0"
            - name: MINTPLANE_METRICS_PORT
              value: {{ $root.Values.metrics.port | quote }}
            {{- end }}
            {{- else if eq $kind "http" }}
            - name: MINTPLANE_GATEWAY_HOST
              value: "0.0.0.0"
            - name: MINTPLANE_GATEWAY_PORT
              value: {{ $c.port | quote }}
            - name: MINTPLANE_GATEWAY_SHUTDOWN_GRACE_SECONDS
              value: {{ max 1 (sub (int $c.terminationGracePeriodSeconds) 5) | quote }}
            {{- else }}
            {{- include "mintplane.operator.env" . | nindent 12 }}
            {{- end }}
            - name: MINTPLANE_SHUTDOWN_GRACE_SECONDS
              value: {{ max 1 (sub (int $c.terminationGracePeriodSeconds) 5) | quote }}
            {{- range (include "mintplane.component.upstreams" . | fromJsonArray) }}
            - name: {{ .env }}
              value: {{ .address | quote }}
            {{- end }}
            {{- include "mintplane.secretEnv" (dict "root" $root "secretEnv" $c.secretEnv) | nindent 12 }}
            {{- range $key, $value := $c.env }}
            - name: {{ $key }}
              value: {{ $value | toString | quote }}
            {{- end }}
            {{- with $c.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          {{- range $probe := list "startup" "liveness" "readiness" }}
          {{ $probe }}Probe:
            {{- include "mintplane.component.probeHandler" (dict "kind" $kind "c" $c "probe" $probe) | nindent 12 }}
            {{- toYaml (get $c.probes $probe) | nindent 12 }}
          {{- end }}
          resources:
            {{- toYaml $c.resources | nindent 12 }}
          securityContext:
            {{- toYaml $c.securityContext | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: {{ $c.tmpSizeLimit }}
{{- end }}

{{- define "mintplane.component.service" -}}
{{- $root := .root }}
{{- $c := .c }}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "mintplane.componentName" . }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "mintplane.componentLabels" . | nindent 4 }}
  {{- with $c.service.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ $c.service.type }}
  {{- if $c.service.headless }}
  clusterIP: None
  {{- end }}
  selector:
    {{- include "mintplane.componentSelectorLabels" . | nindent 4 }}
  ports:
    {{- if eq .kind "grpc" }}
    - name: grpc
      port: {{ $c.port }}
      targetPort: grpc
      protocol: TCP
      appProtocol: kubernetes.io/h2c
    {{- if $root.Values.metrics.enabled }}
    - name: metrics
      port: {{ $root.Values.metrics.port }}
      targetPort: metrics
      protocol: TCP
      appProtocol: http
    {{- end }}
    {{- else }}
    - name: http
      port: {{ $c.port }}
      targetPort: http
      protocol: TCP
      appProtocol: http
    {{- end }}
{{- end }}

{{- define "mintplane.component.pdb" -}}
{{- $c := .c }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "mintplane.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "mintplane.componentLabels" . | nindent 4 }}
spec:
  {{- if hasKey $c.pdb "minAvailable" }}
  minAvailable: {{ $c.pdb.minAvailable }}
  {{- else }}
  maxUnavailable: {{ $c.pdb.maxUnavailable }}
  {{- end }}
  # A pod that never became ready must not block node drains.
  unhealthyPodEvictionPolicy: AlwaysAllow
  selector:
    matchLabels:
      {{- include "mintplane.componentSelectorLabels" . | nindent 6 }}
{{- end }}

{{- define "mintplane.component.hpa" -}}
{{- $c := .c }}
{{- if gt (int $c.autoscaling.minReplicas) (int $c.autoscaling.maxReplicas) }}
{{- fail (printf "%s: autoscaling.minReplicas (%v) is above autoscaling.maxReplicas (%v)" .name $c.autoscaling.minReplicas $c.autoscaling.maxReplicas) }}
{{- end }}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "mintplane.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "mintplane.componentLabels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "mintplane.componentName" . }}
  minReplicas: {{ $c.autoscaling.minReplicas }}
  maxReplicas: {{ $c.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $c.autoscaling.targetCPUUtilizationPercentage }}
{{- end }}

{{/* Data-layer ports a component may reach: those of the stores whose connection string it receives. */}}
{{- define "mintplane.dataLayerPorts" -}}
{{- $byKey := .root.Values.networkPolicy.egress.dataLayer.ports }}
{{- $numbers := list }}
{{- range .c.secretEnv }}
{{- range (get $byKey . | default list) }}
{{- $numbers = append $numbers (printf "%05d" (int .)) }}
{{- end }}
{{- end }}
{{- $ports := list }}
{{- range (uniq $numbers | sortAlpha) }}
{{- $ports = append $ports (dict "port" (atoi .) "protocol" "TCP") }}
{{- end }}
{{- toJson $ports }}
{{- end }}

{{/* One egress rule from a values block {ports, to}; an empty `to` means any destination. */}}
{{- define "mintplane.egressRule" -}}
- ports:
    {{- toYaml .ports | nindent 4 }}
  {{- with .to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{- define "mintplane.component.networkPolicy" -}}
{{- $root := .root }}
{{- $c := .c }}
{{- $kind := .kind }}
{{- $np := $root.Values.networkPolicy }}
{{- $release := include "mintplane.selectorLabels" $root | fromYaml }}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "mintplane.componentName" . }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "mintplane.componentLabels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "mintplane.componentSelectorLabels" . | nindent 6 }}
  policyTypes:
    - Ingress
    - Egress
  {{- if eq $kind "operator" }}
  # Nothing connects to the operator; the kubelet's health checks are not subject to NetworkPolicy.
  ingress: []
  {{- else }}
  ingress:
    {{- if eq $kind "grpc" }}
    - ports:
        - port: {{ $c.port }}
          protocol: TCP
      from:
        {{- if $np.allowSameNamespace }}
        - podSelector: {}
        {{- else }}
        # Every pod of this release: the gateway, the operator and the services calling each other.
        - podSelector:
            matchLabels:
              {{- toYaml $release | nindent 14 }}
        {{- end }}
    {{- if $root.Values.metrics.enabled }}
    - ports:
        - port: {{ $root.Values.metrics.port }}
          protocol: TCP
      {{- with $np.metricsFrom }}
      from:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    {{- end }}
    {{- else }}
    - ports:
        - port: {{ $c.port }}
          protocol: TCP
      {{- with $np.gatewayFrom }}
      from:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    {{- end }}
  {{- end }}
  egress:
    {{- include "mintplane.egressRule" $np.egress.dns | nindent 4 }}
    {{- $dataPorts := include "mintplane.dataLayerPorts" . | fromJsonArray }}
    {{- if $dataPorts }}
    {{- include "mintplane.egressRule" (dict "ports" $dataPorts "to" $np.egress.dataLayer.to) | nindent 4 }}
    {{- end }}
    {{- include "mintplane.egressRule" $np.egress.chainRpc | nindent 4 }}
    {{- range (include "mintplane.component.upstreams" . | fromJsonArray) }}
    # gRPC to {{ .service }} (upstreams).
    - ports:
        - port: {{ .port }}
          protocol: TCP
      to:
        - podSelector:
            matchLabels:
              {{- include "mintplane.componentSelectorLabels" (dict "root" $root "name" .service) | nindent 14 }}
    {{- end }}
    {{- if eq $kind "operator" }}
    {{- include "mintplane.egressRule" $np.egress.kubeApi | nindent 4 }}
    {{- end }}
    {{- with $np.extraEgress }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}

{{- define "mintplane.component.serviceMonitor" -}}
{{- $root := .root }}
{{- $sm := $root.Values.metrics.serviceMonitor }}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "mintplane.componentName" . }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "mintplane.componentLabels" . | nindent 4 }}
    {{- with $sm.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "mintplane.componentSelectorLabels" . | nindent 6 }}
  namespaceSelector:
    matchNames:
      - {{ $root.Release.Namespace }}
  endpoints:
    - port: metrics
      path: /metrics
      interval: {{ $sm.interval }}
      scrapeTimeout: {{ $sm.scrapeTimeout }}
{{- end }}

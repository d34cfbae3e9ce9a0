{{/* Rules of the operator's RBAC; why each one exists is told in operator-rbac.yaml. */}}

{{/* Rules on namespaced resources: a ClusterRole with rbac.scope=cluster, a Role per watched namespace otherwise. */}}
{{- define "mintplane.operator.namespacedRules" -}}
- apiGroups: ["mintplane.io"]
  resources: ["chains", "chainendpoints", "indexerjobs", "collections"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["mintplane.io"]
  resources: ["chains/status", "chainendpoints/status", "indexerjobs/status", "collections/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: ["mintplane.io"]
  resources: ["chains/finalizers", "chainendpoints/finalizers", "indexerjobs/finalizers", "collections/finalizers"]
  verbs: ["update"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["create", "get", "list", "watch", "patch", "update", "delete"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["create", "get", "list", "watch", "patch", "update", "delete"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}

{{/* Kopf's discovery of its CRDs and of namespaces: always cluster-wide (both are cluster-scoped). */}}
{{- define "mintplane.operator.clusterRules" -}}
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list", "watch"]
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list", "watch"]
{{- end }}

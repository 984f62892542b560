{{/* Chart name, truncated to a DNS label. */}}
{{- define "mesh-admission.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: prefix of every resource, the Service name (so the --service-name of the webhook
and the DNS name in its certificate) and the name of both webhook configurations.
*/}}
{{- define "mesh-admission.fullname" -}}
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

{{- define "mesh-admission.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "mesh-admission.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mesh-admission.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "mesh-admission.labels" -}}
helm.sh/chart: {{ include "mesh-admission.chart" . }}
{{ include "mesh-admission.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "mesh-admission.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mesh-admission.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The certificate Secret. The self mode's Secret is created by the webhook (not by Helm), so it
gets another default name: switching modes never collides with a Helm-owned Secret.
*/}}
{{- define "mesh-admission.secretName" -}}
{{- if .Values.certificates.secretName }}
{{- .Values.certificates.secretName }}
{{- else if eq .Values.certificates.mode "self" }}
{{- printf "%s-self-tls" (include "mesh-admission.fullname" .) }}
{{- else }}
{{- printf "%s-tls" (include "mesh-admission.fullname" .) }}
{{- end }}
{{- end }}

{{- define "mesh-admission.image" -}}
{{- /* No image of this name exists in any public registry: without a repository the pods could
       never start, so refuse to render rather than install a webhook nothing serves. */}}
{{- $repository := .Values.image.repository }}
{{- if not $repository }}
{{- fail "image.repository is not set: build the image from the repository's Dockerfile, push it to your registry and install with --set image.repository=REGISTRY/mesh-admission" }}
{{- else if eq $repository "mesh-admission" }}
{{- fail "image.repository is \"mesh-admission\", which names no registry: push the image built from the repository's Dockerfile to your registry and set --set image.repository=REGISTRY/mesh-admission" }}
{{- end }}
{{- include "mesh-admission.imageRef" . }}
{{- end }}

{{/* The image reference, unchecked: for the test pod, so a refusal names the Deployment. */}}
{{- define "mesh-admission.imageRef" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Namespaces the webhooks never see: system ones, the release's, configured ones. */}}
{{- define "mesh-admission.excludedNamespaces" -}}
{{- $names := list "kube-system" "kube-public" "kube-node-lease" .Release.Namespace }}
{{- $names = concat $names .Values.webhook.excludedNamespaces .Values.config.exemptNamespaces }}
{{- toJson (uniq $names) }}
{{- end }}

{{/* Pod and container security settings shared by the webhook and the test pod. */}}
{{- define "mesh-admission.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.runAsUser }}
runAsGroup: {{ .Values.runAsGroup }}
fsGroup: {{ .Values.runAsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "mesh-admission.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.runAsUser }}
runAsGroup: {{ .Values.runAsGroup }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
Helm mode: the CA and serving certificate, generated once per render and shared by the
Secret and the webhook configurations (their caBundle), and kept across upgrades: when the
Secret already exists (lookup), its contents are reused. Stored on the root context, which
every template of this chart renders with.
*/}}
{{- define "mesh-admission.helmCertificates" -}}
{{- if not (hasKey $ "meshAdmissionHelmCertificates") }}
{{- $secretName := include "mesh-admission.secretName" . }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace $secretName }}
{{- $data := dict }}
{{- if and $existing $existing.data }}
{{- $data = $existing.data }}
{{- end }}
{{- if and (hasKey $data "ca.crt") (hasKey $data "tls.crt") (hasKey $data "tls.key") }}
{{- $_ := set $ "meshAdmissionHelmCertificates" (dict "caCrt" (index $data "ca.crt") "tlsCrt" (index $data "tls.crt") "tlsKey" (index $data "tls.key")) }}
{{- else }}
{{- $service := include "mesh-admission.fullname" . }}
{{- $days := int .Values.certificates.helm.validityDays }}
{{- $ca := genCA (printf "%s-ca" $service) $days }}
{{- $dns := list (printf "%s.%s.svc" $service .Release.Namespace) (printf "%s.%s.svc.cluster.local" $service .Release.Namespace) }}
{{- $cert := genSignedCert (printf "%s.%s.svc" $service .Release.Namespace) nil $dns $days $ca }}
{{- $_ := set $ "meshAdmissionHelmCertificates" (dict "caCrt" ($ca.Cert | b64enc) "tlsCrt" ($cert.Cert | b64enc) "tlsKey" ($cert.Key | b64enc)) }}
{{- end }}
{{- end }}
{{- end }}

{{/* Fields shared by both webhooks (see src/webhook-config.ts). */}}
{{- define "mesh-admission.webhookCommon" -}}
admissionReviewVersions: ["v1"]
sideEffects: None
failurePolicy: {{ .Values.webhook.failurePolicy }}
timeoutSeconds: {{ .Values.webhook.timeoutSeconds }}
matchPolicy: Equivalent
namespaceSelector:
  matchExpressions:
    - key: kubernetes.io/metadata.name
      operator: NotIn
      values: {{ include "mesh-admission.excludedNamespaces" . }}
objectSelector:
  matchExpressions:
    # Break-glass for one object: label it mesh-admission.io/ignore=true.
    - key: mesh-admission.io/ignore
      operator: NotIn
      values: ["true"]
{{- end }}

{{/* The fewest pods the Deployment runs: replicaCount, or the autoscaler's minimum. */}}
{{- define "mesh-admission.minReplicas" -}}
{{- if .Values.autoscaling.enabled }}{{ int .Values.autoscaling.minReplicas }}{{ else }}{{ int .Values.replicaCount }}{{ end }}
{{- end }}

{{/* The PodDisruptionBudget's minAvailable: as configured, but at most one below the fewest
     pods the Deployment runs, so a drain can always evict one (0: only one pod). */}}
{{- define "mesh-admission.pdbMinAvailable" -}}
{{- min (int .Values.podDisruptionBudget.minAvailable) (sub (int (include "mesh-admission.minReplicas" .)) 1) }}
{{- end }}

{{/*
What `mesh-admission audit` reads, cluster-wide and only by listing: CLUSTER_READER_RULES of
src/kube/api-refusal.ts (test/chart.test.ts checks both agree). The rules of the audit
ClusterRole, and of the webhook's own when it writes reports (reports.interval).
*/}}
{{- define "mesh-admission.auditReadRules" -}}
- apiGroups: [""]
  resources: ["namespaces", "services"]
  verbs: ["list"]
- apiGroups: ["networking.istio.io"]
  resources: ["gateways", "virtualservices", "serviceentries", "destinationrules"]
  verbs: ["list"]
{{- end }}

{{/*
What writing the reports of one format takes (the format is the argument): the calls of
src/kube/report-writer.ts (REPORT_WRITER_VERBS), on the namespaced and the cluster report.
*/}}
{{- define "mesh-admission.reportWriteRules" -}}
{{- if eq . "openreports" }}
- apiGroups: ["openreports.io"]
  resources: ["reports", "clusterreports"]
  verbs: ["list", "create", "update", "delete"]
{{- else }}
- apiGroups: ["wgpolicyk8s.io"]
  resources: ["policyreports", "clusterpolicyreports"]
  verbs: ["list", "create", "update", "delete"]
{{- end }}
{{- end }}

{{/*
Names and labels shared by every template (the admission templates webhook.yaml and
lock-policy.yaml use them too).
*/}}

{{- define "padlock.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name (fullnameOverride wins); just the release name when it already contains the name. */}}
{{- define "padlock.fullname" -}}
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

{{- define "padlock.selectorLabels" -}}
app.kubernetes.io/name: {{ include "padlock.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "padlock.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "padlock.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: padlock
{{- end }}

{{/* The operator's ServiceAccount; the lock exempts system:serviceaccount:<namespace>:<this>. */}}
{{- define "padlock.serviceAccountName" -}}
{{- .Values.serviceAccount.name | default (include "padlock.fullname" .) }}
{{- end }}

{{/* The operator's user name as the API server sees it. */}}
{{- define "padlock.operatorUsername" -}}
{{- printf "system:serviceaccount:%s:%s" .Release.Namespace (include "padlock.serviceAccountName" .) }}
{{- end }}

{{/* Service in front of the webhook and metrics ports. */}}
{{- define "padlock.serviceName" -}}
{{- include "padlock.fullname" . }}
{{- end }}

{{/* The ValidatingWebhookConfiguration the operator keeps patched (and may touch nothing else). */}}
{{- define "padlock.webhookConfigurationName" -}}
{{- .Values.webhook.configurationName }}
{{- end }}

{{- define "padlock.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* A list of strings as CEL string literals: 'a', 'b' (for the lock policy's generated CEL). */}}
{{- define "padlock.celStrings" -}}
{{- $out := list }}
{{- range . }}{{- $out = append $out (printf "'%s'" .) }}{{- end }}
{{- join ", " $out }}
{{- end }}

{{/*
The Secret holding the webhook's serving certificate, or "" when the operator generates one:
cert-manager's Certificate writes webhook.certificate.secretName (default <fullname>-webhook-tls);
otherwise webhook.certificate.secretName, or the older webhook.certSecret.
*/}}
{{- define "padlock.webhookCertSecret" -}}
{{- $cert := .Values.webhook.certificate }}
{{- if $cert.certManager.enabled }}
{{- $cert.secretName | default (printf "%s-webhook-tls" (include "padlock.fullname" .)) }}
{{- else }}
{{- $cert.secretName | default .Values.webhook.certSecret }}
{{- end }}
{{- end }}

{{/*
"true" when the operator writes the caBundle of the webhook configuration: it made the CA itself, or it
serves a Secret's certificate and no webhook.certificate.caBundle was given. With cert-manager the
cainjector owns the caBundle, and with a given caBundle the chart does: the operator must not fight them.
*/}}
{{- define "padlock.operatorPatchesCABundle" -}}
{{- $cert := .Values.webhook.certificate }}
{{- if and .Values.webhook.enabled (not $cert.certManager.enabled) (not $cert.caBundle) }}true{{ else }}false{{ end }}
{{- end }}

{{/* The Secret holding the webhook certificate every replica shares (leader election, no webhook.certSecret). */}}
{{- define "padlock.webhookTlsSecretName" -}}
{{- printf "%s-webhook-tls" (include "padlock.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* "true" when the replicas share a generated webhook certificate through that Secret: leader
election, and no certificate from a Secret or cert-manager (padlock.webhookCertSecret). */}}
{{- define "padlock.sharedWebhookCert" -}}
{{- if and .Values.webhook.enabled .Values.leaderElection.enabled (not (include "padlock.webhookCertSecret" .)) }}true{{ end }}
{{- end }}

{{/*
Chart name, truncated to the 63 characters Kubernetes allows in names and labels.
*/}}
{{- define "posesvc.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: fullnameOverride, or "<release>-<chart>" (just "<release>" when it already contains the
chart name).
*/}}
{{- define "posesvc.fullname" -}}
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

{{- define "posesvc.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "posesvc.labels" -}}
helm.sh/chart: {{ include "posesvc.chart" . }}
{{ include "posesvc.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: inference
{{- end }}

{{/*
Selector labels (immutable on a Deployment: never add to these).
*/}}
{{- define "posesvc.selectorLabels" -}}
app.kubernetes.io/name: {{ include "posesvc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "posesvc.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "posesvc.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Image reference; the default tag is "<appVersion>-<flavor>" (e.g. 0.1.0-cpu).
*/}}
{{- define "posesvc.image" -}}
{{- $tag := default (printf "%s-%s" .Chart.AppVersion .Values.image.flavor) .Values.image.tag }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}

{{/*
Model card the init container fetches.
*/}}
{{- define "posesvc.fetchCard" -}}
{{- default .Values.config.modelCard .Values.weights.fetch.card }}
{{- end }}

{{- define "posesvc.weightsClaimName" -}}
{{- default (printf "%s-weights" (include "posesvc.fullname" .)) .Values.weights.persistence.existingClaim }}
{{- end }}

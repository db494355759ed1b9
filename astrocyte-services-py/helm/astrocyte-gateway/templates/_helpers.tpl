{{/* Chart name, truncated to the 63 characters Kubernetes allows in a name. */}}
{{- define "astrocyte-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name: release-chart, unless the release name already contains it. */}}
{{- define "astrocyte-gateway.fullname" -}}
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

{{- define "astrocyte-gateway.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "astrocyte-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "astrocyte-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "astrocyte-gateway.labels" -}}
helm.sh/chart: {{ include "astrocyte-gateway.chart" . }}
{{ include "astrocyte-gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The ConfigMap holding astrocyte.yaml: the user's own, or the one this chart renders. */}}
{{- define "astrocyte-gateway.configMapName" -}}
{{- default (include "astrocyte-gateway.fullname" .) .Values.existingConfigMap }}
{{- end }}

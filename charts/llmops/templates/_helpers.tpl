{{/* Names and labels shared by every template. */}}

{{- define "llmops.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* "<release>-llmops", or the release name when it contains the chart name. */}}
{{- define "llmops.fullname" -}}
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

{{- define "llmops.operatorName" -}}
{{- printf "%s-operator" (include "llmops.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "llmops.agentName" -}}
{{- printf "%s-agent" (include "llmops.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "llmops.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object of the release. */}}
{{- define "llmops.labels" -}}
helm.sh/chart: {{ include "llmops.chart" . }}
{{ include "llmops.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: llmops
{{- end -}}

{{/* Labels that select the release's objects (no version: they never change). */}}
{{- define "llmops.selectorLabels" -}}
app.kubernetes.io/name: {{ include "llmops.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "llmops.operatorSelectorLabels" -}}
{{ include "llmops.selectorLabels" . }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "llmops.operatorLabels" -}}
{{ include "llmops.labels" . }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "llmops.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "llmops.operatorName" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "llmops.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* The six kinds' plurals, for RBAC rules. */}}
{{- define "llmops.plurals" -}}
- promptversions
- finetunejobs
- ragindexes
- evalruns
- modelendpoints
- monitors
{{- end -}}

{{/* The same with a subresource suffix: include "llmops.subresources" "status". */}}
{{- define "llmops.subresources" -}}
{{- $sub := . -}}
{{- $out := list -}}
{{- range list "promptversions" "finetunejobs" "ragindexes" "evalruns" "modelendpoints" "monitors" -}}
{{- $out = append $out (printf "- %s/%s" . $sub) -}}
{{- end -}}
{{- join "\n" $out -}}
{{- end -}}

{{/* Namespaces where agent Pods run: release, watchNamespace, agent.namespaces. */}}
{{- define "llmops.agentNamespaces" -}}
{{- $all := list .Release.Namespace -}}
{{- if .Values.watchNamespace -}}{{- $all = append $all .Values.watchNamespace -}}{{- end -}}
{{- range .Values.agent.namespaces -}}{{- $all = append $all . -}}{{- end -}}
{{- $all | uniq | toJson -}}
{{- end -}}

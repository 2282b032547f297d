{{/* Names are fixed: one modelgate per cluster (the webhook configurations and ClusterRoles are cluster-wide). */}}
{{- define "modelgate.operator" -}}modelgate-operator{{- end }}
{{- define "modelgate.webhookService" -}}modelgate-webhook{{- end }}
{{- define "modelgate.metricsService" -}}modelgate-metrics{{- end }}
{{- define "modelgate.certSecret" -}}modelgate-webhook-cert{{- end }}

{{- define "modelgate.labels" -}}
app.kubernetes.io/part-of: modelgate
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/* The operator pods: what the Services, the PodDisruptionBudget and the spread select. */}}
{{- define "modelgate.selector" -}}
app.kubernetes.io/name: modelgate-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "modelgate.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

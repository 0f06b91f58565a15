{{/* Names, labels and the remediator's namespaces, shared by the templates. */}}

{{- define "qwen-sentinel.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's prefix: the release name, with the chart name added unless it is in it already. */}}
{{- define "qwen-sentinel.fullname" -}}
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

{{- define "qwen-sentinel.exporter.fullname" -}}
{{- printf "%s-exporter" (include "qwen-sentinel.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "qwen-sentinel.remediator.fullname" -}}
{{- printf "%s-remediator" (include "qwen-sentinel.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "qwen-sentinel.remediator.serviceAccountName" -}}
{{- if .Values.remediator.serviceAccount.create -}}
{{- default (include "qwen-sentinel.remediator.fullname" .) .Values.remediator.serviceAccount.name -}}
{{- else -}}
{{- required "remediator.serviceAccount.name is required when remediator.serviceAccount.create is false" .Values.remediator.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding the webhook token, and its key. */}}
{{- define "qwen-sentinel.webhookToken.secretName" -}}
{{- default (printf "%s-webhook-token" (include "qwen-sentinel.fullname" .)) .Values.remediator.webhookToken.existingSecret -}}
{{- end -}}
{{- define "qwen-sentinel.webhookToken.key" -}}
{{- if .Values.remediator.webhookToken.existingSecret -}}{{ .Values.remediator.webhookToken.key }}{{- else -}}token{{- end -}}
{{- end -}}

{{- define "qwen-sentinel.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "qwen-sentinel.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "qwen-sentinel.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component: pass (dict "ctx" $ "component" "exporter"). */}}
{{- define "qwen-sentinel.selectorLabels" -}}
app.kubernetes.io/name: {{ include "qwen-sentinel.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Labels of the Prometheus Operator's objects: the release label kube-prometheus-stack selects by. */}}
{{- define "qwen-sentinel.monitoringLabels" -}}
{{ include "qwen-sentinel.labels" . }}
{{- with .Values.monitoring.release }}
release: {{ . | quote }}
{{- end }}
{{- with .Values.monitoring.labels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
The namespaces the remediator manages, as a YAML map namespace -> whether it gets rollout rights:
those of its targets and remediator.extraNamespaces. Rollout rights follow remediator.rbac.rollout
(auto: where a target uses method rollout).
*/}}
{{- define "qwen-sentinel.remediator.namespaces" -}}
{{- $rollout := toString .Values.remediator.rbac.rollout -}}
{{- if not (has $rollout (list "auto" "true" "false")) -}}
{{- fail (printf "remediator.rbac.rollout: must be auto, true or false, not %q" $rollout) -}}
{{- end -}}
{{- $out := dict -}}
{{- range $i, $t := .Values.remediator.targets -}}
{{- $ns := required (printf "remediator.targets[%d].namespace is required" $i) $t.namespace -}}
{{- $method := default "delete" $t.method -}}
{{- if not (has $method (list "delete" "evict" "rollout")) -}}
{{- fail (printf "remediator.targets[%d].method: must be delete, evict or rollout, not %q" $i $method) -}}
{{- end -}}
{{- $grant := or (eq $rollout "true") (and (eq $rollout "auto") (eq $method "rollout")) (eq (get $out $ns) "true") -}}
{{- $_ := set $out $ns (toString $grant) -}}
{{- end -}}
{{- range .Values.remediator.extraNamespaces -}}
{{- if not (hasKey $out .) -}}
{{- $_ := set $out . (toString (eq $rollout "true")) -}}
{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/*
The release's full name: the release name, with the chart name after it unless
the release name already contains it. Kubernetes names stop at 63 characters.
*/}}
{{- define "omnigate.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The name of a component's objects: <fullname>-<component>, e.g. -nats. */}}
{{- define "omnigate.componentName" -}}
{{- printf "%s-%s" (include "omnigate.fullname" .root | trunc 50 | trimSuffix "-") .component -}}
{{- end -}}

{{/* Labels on every object; .component names the part (omnigate, nats, redis). */}}
{{- define "omnigate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
{{ include "omnigate.selectorLabels" . }}
{{- end -}}

{{/* Labels that select a component's pods; they never change on upgrade. */}}
{{- define "omnigate.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "omnigate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "omnigate.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{- define "omnigate.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* The Secret of the built-in Redis: its password and omnigate's URL for it. */}}
{{- define "omnigate.redisSecretName" -}}
{{- include "omnigate.componentName" (dict "root" . "component" "redis") -}}
{{- end -}}

{{/* The NATS URL of the built-in cluster: its client Service. */}}
{{- define "omnigate.natsURL" -}}
{{- printf "nats://%s:4222" (include "omnigate.componentName" (dict "root" . "component" "nats")) -}}
{{- end -}}

{{/*
The omnigate configuration: what the chart knows (listen address, data
directory, NATS, Redis), overridden by .Values.config. It fails the render when
the replicas would not share one NATS cluster. With redis.enabled false and no
config.store, the state goes to JetStream KV on that cluster, which also works.
*/}}
{{- define "omnigate.config" -}}
{{- $chart := dict
  "http" (dict "addr" ":8080")
  "data_dir" "/data"
  "log" (dict "format" "json") -}}
{{- if .Values.publicURL -}}
{{- $_ := set $chart.http "public_url" .Values.publicURL -}}
{{- end -}}
{{- if .Values.nats.enabled -}}
{{- if or (lt (int .Values.nats.streamReplicas) 1) (gt (int .Values.nats.streamReplicas) (int .Values.nats.replicas)) -}}
{{- fail (printf "nats.streamReplicas is %v: want 1 to nats.replicas (%v)" .Values.nats.streamReplicas .Values.nats.replicas) -}}
{{- end -}}
{{- $_ := set $chart "nats" (dict "url" (include "omnigate.natsURL" .) "streams" (dict "replicas" (int .Values.nats.streamReplicas))) -}}
{{- end -}}
{{- if .Values.redis.enabled -}}
{{- $_ := set $chart "store" (dict "backend" "redis" "redis" (dict "url" (printf "${file:%s/store_redis_url}" .Values.secretsMountPath))) -}}
{{- end -}}
{{- $cfg := mustMergeOverwrite $chart (deepCopy (.Values.config | default dict)) -}}
{{- if not (dig "nats" "url" "" $cfg) -}}
{{- fail "nats.enabled is false: set config.nats.url to your NATS cluster (every replica must share one; an embedded server per pod would not)" -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/* The configuration of every built-in NATS server (nats.conf). */}}
{{- define "omnigate.natsConf" -}}
{{- $name := include "omnigate.componentName" (dict "root" . "component" "nats") -}}
{{- $replicas := int .Values.nats.replicas -}}
server_name: $POD_NAME
listen: 0.0.0.0:4222
http: 0.0.0.0:8222
jetstream {
  store_dir: /data/jetstream
  max_memory_store: {{ .Values.nats.jetstream.maxMemoryStore }}
  max_file_store: {{ .Values.nats.jetstream.maxFileStore }}
}
{{- if gt $replicas 1 }}
cluster {
  name: {{ .Values.nats.clusterName }}
  listen: 0.0.0.0:6222
  # Every server, itself included (a server ignores its own route).
  routes: [
    {{- range $i := until $replicas }}
    nats-route://{{ $name }}-{{ $i }}.{{ $name }}-headless:6222
    {{- end }}
  ]
}
{{- end }}
{{- end -}}

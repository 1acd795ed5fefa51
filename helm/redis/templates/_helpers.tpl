{{/* Name prefix of every object: "<release>-redis", the name every client derives
(global.redis.host empty). Not configurable: a second source would drift. */}}
{{- define "redis.fullname" -}}
{{- printf "%s-redis" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Service port: global.redis.port, the port every client connects to. */}}
{{- define "redis.port" -}}
{{- ((.Values.global | default dict).redis | default dict).port | default 6379 -}}
{{- end -}}

{{/* global.redis.existingSecret when set (shared with the clients); else this chart's Secret. */}}
{{- define "redis.existingSecret" -}}
{{- ((.Values.global | default dict).redis | default dict).existingSecret | default "" -}}
{{- end -}}

{{- define "redis.selectorLabels" -}}
app.kubernetes.io/name: redis
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: online-store
{{- end -}}

{{- define "redis.labels" -}}
{{ include "redis.selectorLabels" . }}
app.kubernetes.io/part-of: feast-kserve
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Name of the Secret holding the password. */}}
{{- define "redis.secretName" -}}
{{- include "redis.existingSecret" . | default (printf "%s-auth" (include "redis.fullname" .)) -}}
{{- end -}}

{{/* image reference: repository[:tag][@digest] */}}
{{- define "redis.image" -}}
{{- $img := . -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $img.repository $img.tag -}}
{{- end -}}
{{- end -}}

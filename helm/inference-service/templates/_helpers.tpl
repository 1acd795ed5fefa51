{{- define "isvc.name" -}}{{ .Values.name }}{{- end -}}

{{- define "isvc.serverless" -}}
{{- if has .Values.deploymentMode (list "Serverless" "Knative") -}}true{{- end -}}
{{- end -}}

{{- define "isvc.commonLabels" -}}
app.kubernetes.io/name: {{ .Values.name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: feast-kserve
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Pod label that identifies a component; the NetworkPolicies and PDBs select on it. */}}
{{- define "isvc.componentSelector" -}}
feast-kserve.io/component: {{ .component }}
feast-kserve.io/inferenceservice: {{ .root.Values.name }}
{{- end -}}

{{/* Project image: include "isvc.image" (dict "root" . "image" .Values.predictor.image "name" "feast-kserve-predictor") */}}
{{- define "isvc.image" -}}
{{- $g := .root.Values.global | default dict -}}
{{- $repo := .image.repository | default (printf "%s/%s" ($g.imageRegistry | default "kind.local") .name) -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $repo .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (.image.tag | default $g.imageTag | default .root.Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{- define "isvc.predictorSA" -}}
{{- .Values.predictor.serviceAccount.name | default (printf "%s-predictor" .Values.name) -}}
{{- end -}}
{{- define "isvc.transformerSA" -}}
{{- .Values.transformer.serviceAccount.name | default (printf "%s-transformer" .Values.name) -}}
{{- end -}}

{{- define "isvc.redisHost" -}}
{{- $g := (.Values.global | default dict).redis | default dict -}}
{{- .Values.redis.host | default $g.host | default (printf "%s-redis" .Release.Name) -}}
{{- end -}}
{{- define "isvc.redisPort" -}}
{{- $g := (.Values.global | default dict).redis | default dict -}}
{{- .Values.redis.port | default $g.port | default 6379 -}}
{{- end -}}
{{- define "isvc.redisSecret" -}}
{{- $g := (.Values.global | default dict).redis | default dict -}}
{{- .Values.redis.existingSecret | default $g.existingSecret | default (printf "%s-redis-auth" .Release.Name) -}}
{{- end -}}
{{- define "isvc.feastRegistry" -}}
{{- .Values.feast.registry | default (printf "%s-feast-registry:6570" .Release.Name) -}}
{{- end -}}

{{/* Autoscaling + metrics annotations of one component: include "isvc.componentAnnotations" (dict "root" . "c" .Values.predictor) */}}
{{- define "isvc.componentAnnotations" -}}
{{- $root := .root -}}
{{- $c := .c -}}
{{- if include "isvc.serverless" $root }}
autoscaling.knative.dev/class: kpa.autoscaling.knative.dev
autoscaling.knative.dev/metric: {{ $c.knative.metric | quote }}
autoscaling.knative.dev/target: {{ $c.knative.target | quote }}
autoscaling.knative.dev/target-utilization-percentage: {{ $c.knative.targetUtilizationPercentage | quote }}
{{- if eq (int $c.minReplicas) 0 }}
autoscaling.knative.dev/scale-to-zero-pod-retention-period: {{ $c.knative.scaleToZeroRetention | quote }}
{{- end }}
{{- if $root.Values.metrics.enabled }}
prometheus.io/scrape: "true"
{{- end }}
{{- else if $root.Values.metrics.enabled }}
prometheus.io/scrape: "true"
prometheus.io/port: "8080"
prometheus.io/path: /metrics
{{- end }}
{{- with $c.annotations }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Replica, scaling and rollout fields of one component (ComponentExtensionSpec). */}}
{{- define "isvc.componentScaling" -}}
{{- $root := .root -}}
{{- $c := .c -}}
minReplicas: {{ $c.minReplicas }}
maxReplicas: {{ $c.maxReplicas }}
{{- if not (include "isvc.serverless" $root) }}
scaleMetric: {{ $c.hpa.metric }}
scaleTarget: {{ $c.hpa.target }}
deploymentStrategy:
  type: RollingUpdate
  rollingUpdate:
    maxUnavailable: 0
    maxSurge: 1
{{- end }}
{{- end -}}

{{/* Checks JSON schema cannot express. */}}
{{- define "isvc.validate" -}}
{{- range $n := list "predictor" "transformer" }}
{{- $c := index $.Values $n }}
{{- if lt (int $c.maxReplicas) (int $c.minReplicas) }}
{{- fail (printf "%s.maxReplicas (%v) must be >= %s.minReplicas (%v)" $n $c.maxReplicas $n $c.minReplicas) }}
{{- end }}
{{- if and (not (include "isvc.serverless" $)) (eq (int $c.minReplicas) 0) }}
{{- fail (printf "%s.minReplicas 0 (scale to zero) needs deploymentMode Serverless/Knative, not %s" $n $.Values.deploymentMode) }}
{{- end }}
{{- end }}
{{- if and .Values.canary.enabled (not (include "isvc.serverless" .)) }}
{{- fail (printf "canary.enabled needs deploymentMode Serverless/Knative (KServe splits traffic between Knative revisions), not %s" .Values.deploymentMode) }}
{{- end }}
{{- if and .Values.canary.enabled (eq .Values.canary.storageUri .Values.predictor.storageUri) }}
{{- fail "canary.storageUri must differ from predictor.storageUri (the canary is a new model version)" }}
{{- end }}
{{- end -}}

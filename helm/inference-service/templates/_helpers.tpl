{{/* InferenceService name (= model name in /v2/models/<name>/infer): `name`, else derived from
the release like Helm's fullname: "<release>-click-model", or the release name when it already
contains "click-model". Two releases in one namespace never collide. */}}
{{- define "isvc.name" -}}
{{- if .Values.name -}}
{{- .Values.name -}}
{{- else if contains "click-model" .Release.Name -}}
{{- .Release.Name | trunc 45 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-click-model" .Release.Name | trunc 45 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* ServingRuntime name: runtime.name, else "<isvc name>-runtime" (one per release). */}}
{{- define "isvc.runtimeName" -}}
{{- .Values.runtime.name | default (printf "%s-runtime" (include "isvc.name" .)) -}}
{{- end -}}

{{/* Collocated mode: the model scored inside the transformer image, no predictor component. */}}
{{- define "isvc.collocated" -}}
{{- if .Values.collocated.enabled -}}true{{- end -}}
{{- end -}}

{{/* The Service callers use: the transformer, or the predictor (collocated: the only component). */}}
{{- define "isvc.entryService" -}}
{{- printf "%s-%s" (include "isvc.name" .) (ternary "predictor" "transformer" (eq (include "isvc.collocated" .) "true")) -}}
{{- end -}}

{{- define "isvc.serverless" -}}
{{- if eq .Values.deploymentMode "Knative" -}}true{{- end -}}
{{- end -}}

{{- define "isvc.commonLabels" -}}
app.kubernetes.io/name: {{ include "isvc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: feast-kserve
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Pod label that identifies a component; the NetworkPolicies and PDBs select on it. */}}
{{- define "isvc.componentSelector" -}}
feast-kserve.io/component: {{ .component }}
feast-kserve.io/inferenceservice: {{ include "isvc.name" .root }}
{{- end -}}

{{/* Project image: include "isvc.image" (dict "root" . "image" .Values.predictor.image "name" "feast-kserve-predictor") */}}
{{- define "isvc.image" -}}
{{- $g := .root.Values.global | default dict -}}
{{- $repo := .image.repository | default (printf "%s/%s" (required "global.imageRegistry is required: the registry the project images were pushed to (make push)" $g.imageRegistry) .name) -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $repo .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (.image.tag | default (required "global.imageTag is required: the tag the project images were pushed with (make push)" $g.imageTag)) -}}
{{- end -}}
{{- end -}}

{{- define "isvc.predictorSA" -}}
{{- .Values.predictor.serviceAccount.name | default (printf "%s-predictor" (include "isvc.name" .)) -}}
{{- end -}}
{{- define "isvc.transformerSA" -}}
{{- .Values.transformer.serviceAccount.name | default (printf "%s-transformer" (include "isvc.name" .)) -}}
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
{{/* Feast registry server address: feast.registry, else derived from the same globals the
feast-feature-server chart names and opens it with (its feast.fullname / feast.registryPort). */}}
{{- define "isvc.feastRegistry" -}}
{{- $g := (.Values.global | default dict).feast | default dict -}}
{{- $prefix := $g.fullnameOverride | default (printf "%s-feast" .Release.Name) | trunc 50 | trimSuffix "-" -}}
{{- .Values.feast.registry | default (printf "%s-registry:%v" $prefix ($g.registryPort | default 6570)) -}}
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
{{- fail (printf "%s.minReplicas 0 (scale to zero) needs deploymentMode Knative, not %s" $n $.Values.deploymentMode) }}
{{- end }}
{{- end }}
{{- if and .Values.ensemble.enabled .Values.collocated.enabled }}
{{- fail "ensemble.enabled needs separate predictors: not with collocated.enabled" }}
{{- end }}
{{- if and .Values.ensemble.enabled (not .Values.ensemble.second.storageUri) }}
{{- fail "ensemble.second.storageUri is required with ensemble.enabled: the second model's directory" }}
{{- end }}
{{- if and .Values.ensemble.enabled (eq .Values.ensemble.second.storageUri .Values.predictor.storageUri) }}
{{- fail (printf "ensemble.second.storageUri and predictor.storageUri must differ (both %q): an ensemble of one model" .Values.predictor.storageUri) }}
{{- end }}
{{- if and .Values.ensemble.enabled (eq .Values.ensemble.primary.name .Values.ensemble.second.name) }}
{{- fail (printf "ensemble.primary.name and ensemble.second.name must differ (both %q)" .Values.ensemble.second.name) }}
{{- end }}
{{- include "isvc.validateBandit" . }}
{{- if and .Values.canary.enabled (not (include "isvc.serverless" .)) }}
{{- fail (printf "canary.enabled needs deploymentMode Knative (KServe splits traffic between Knative revisions), not %s" .Values.deploymentMode) }}
{{- end }}
{{- if gt (int .Values.streamWorker.keda.minReplicaCount) (int .Values.streamWorker.keda.maxReplicaCount) }}
{{- fail (printf "streamWorker.keda.maxReplicaCount (%v) must be >= streamWorker.keda.minReplicaCount (%v)" .Values.streamWorker.keda.maxReplicaCount .Values.streamWorker.keda.minReplicaCount) }}
{{- end }}
{{- if and .Values.streamWorker.enabled .Values.collocated.enabled }}
{{- fail "streamWorker.enabled needs the predictor component to score through, and collocated mode has none (the transformer image carries no model frameworks)" }}
{{- end }}
{{- if and .Values.canary.enabled .Values.collocated.enabled }}
{{- fail "collocated.enabled and canary.enabled exclude each other: a canary splits traffic between predictor revisions, and collocated mode has no predictor; roll out a new model with predictor.storageUri instead" }}
{{- end }}
{{- if and .Values.canary.enabled (eq .Values.canary.storageUri .Values.predictor.storageUri) }}
{{- fail "canary.storageUri must differ from predictor.storageUri (the canary is a new model version)" }}
{{- end }}
{{- $log := .Values.monitoring.kserveLogger }}
{{- if and $log.enabled .Values.collocated.enabled (not $log.transformer.enabled) }}
{{- fail "monitoring.kserveLogger: collocated mode has one component, logged by kserveLogger.transformer (kserveLogger.predictor is ignored there); enable transformer or turn the logger off" }}
{{- end }}
{{- if and $log.enabled .Values.networkPolicy.enabled .Values.egress.enabled (not $log.sinkTo) }}
{{- fail (printf "monitoring.kserveLogger.sinkTo is required with egress NetworkPolicies on: the logged components' egress must name the sink (%s), e.g. [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: knative-eventing}}}] (or egress.enabled=false)" $log.url) }}
{{- end }}
{{- end -}}

{{/*
KServe's payload logger of one component (the InferenceService `logger` field), or nothing.
include "isvc.kserveLogger" (dict "root" $ "component" "transformer"|"predictor")
*/}}
{{- define "isvc.kserveLogger" -}}
{{- $log := .root.Values.monitoring.kserveLogger }}
{{- $c := index $log .component }}
{{- if and $log.enabled $c.enabled -}}
# KServe's agent sidecar sends this component's {{ ternary "requests and responses" (printf "%ss" $c.mode) (eq $c.mode "all") }} to the sink as CloudEvents.
logger:
  mode: {{ $c.mode }}
  url: {{ $log.url | quote }}
  {{- with $log.metadataHeaders }}
  metadataHeaders:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end -}}

{{/*
Egress rule to the payload logger's sink for a component that logs, or nothing.
include "isvc.kserveLoggerEgress" (dict "root" $ "component" "transformer"|"predictor")
*/}}
{{- define "isvc.kserveLoggerEgress" -}}
{{- $log := .root.Values.monitoring.kserveLogger }}
{{- $c := index $log .component }}
{{- if and $log.enabled $c.enabled }}
{{- $u := urlParse $log.url }}
{{- $hostPort := splitList ":" $u.host -}}
# KServe's payload logger (its agent sidecar) to the sink {{ $log.url }}
- to:
    {{- toYaml $log.sinkTo | nindent 4 }}
  ports:
    - port: {{ if eq (len $hostPort) 2 }}{{ last $hostPort | int }}{{ else }}{{ ternary 443 80 (eq $u.scheme "https") }}{{ end }}
      protocol: TCP
{{- end }}
{{- end -}}

{{/* The predictor can scale to zero: its first request after idling waits for a cold start,
so its callers get long timeouts ("true" or ""). */}}
{{- define "isvc.coldPredictor" -}}
{{- if and (include "isvc.serverless" .) (eq (int .Values.predictor.minReplicas) 0) -}}true{{- end -}}
{{- end -}}

{{/* Feast's connection string of every Redis client; $(REDIS_PASSWORD) is expanded by the kubelet. */}}
{{- define "isvc.redisConnectionString" -}}
{{- printf "%s:%v,password=$(REDIS_PASSWORD)%s" (include "isvc.redisHost" .) (include "isvc.redisPort" .) (ternary ",ssl=true" "" (include "isvc.redisSSL" . | eq "true")) -}}
{{- end -}}
{{- define "isvc.redisSSL" -}}
{{- if or .Values.redis.ssl (((.Values.global | default dict).redis | default dict).ssl | default false) -}}true{{- end -}}
{{- end -}}

{{/* Stream worker names and labels. */}}
{{- define "isvc.streamWorker" -}}
{{- printf "%s-stream-worker" (include "isvc.name" .) -}}
{{- end -}}

{{/* The second model's InferenceService (predictor only). */}}
{{- define "isvc.ensembleSecond" -}}
{{- printf "%s-%s" (include "isvc.name" .) .Values.ensemble.second.name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The transformer's rules file with the ensemble (transformer/rules.py validates it). */}}
{{- define "isvc.ensembleRules" -}}
{{- $e := .Values.ensemble -}}
ensemble:
  combine: {{ $e.combine }}
  members:
    # the transformer's own predictor (KServe's --predictor_host)
    - name: {{ $e.primary.name }}
      weight: {{ $e.primary.weight }}
    - name: {{ $e.second.name }}
      host: {{ include "isvc.ensembleSecond" . }}-predictor.{{ .Release.Namespace }}.svc.cluster.local
      # the runtime serves the model under its InferenceService's name
      model_name: {{ include "isvc.ensembleSecond" . }}
      weight: {{ $e.second.weight }}
{{- end -}}

{{/* A bandit arm's own InferenceService (an arm with storageUri).
include "isvc.banditArm" (dict "root" $ "arm" <arm>) */}}
{{- define "isvc.banditArm" -}}
{{- printf "%s-%s" (include "isvc.name" .root) .arm.name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The bandit file (transformer/multimodel/bandit.py BanditConfig validates it). Arms
without host are predictors of this release: the chart's own, or "<name>-<arm name>". */}}
{{- define "isvc.banditFile" -}}
{{- $root := . -}}
{{- $c := .Values.bandit.config -}}
arms:
  {{- range .Values.bandit.arms }}
  {{- if .host }}
  # arm {{ .name }}: an endpoint deployed outside this release
  - host: {{ .host | toJson }}
    {{- with .modelName }}
    model_name: {{ . | toJson }}
    {{- end }}
    protocol: {{ .protocol | default "v2" }}
    {{- if .useSsl }}
    use_ssl: true
    {{- end }}
  {{- else }}
  {{- $isvc := ternary (include "isvc.banditArm" (dict "root" $root "arm" .)) (include "isvc.name" $root) (hasKey . "storageUri") }}
  # arm {{ .name }}: {{ if hasKey . "storageUri" }}InferenceService {{ $isvc }}{{ else }}this chart's predictor{{ end }}
  - host: {{ $isvc }}-predictor.{{ $root.Release.Namespace }}.svc.cluster.local
    # the runtime serves the model under its InferenceService's name
    model_name: {{ $isvc }}
    protocol: {{ $root.Values.predictor.protocolVersion }}
  {{- end }}
    {{- with .timeoutSeconds }}
    timeout_s: {{ . | toJson }}
    {{- end }}
  {{- end }}
policy: {{ $c.policy | toJson }}
floor: {{ $c.floor | toJson }}
indifference: {{ $c.indifference | toJson }}
epsilon: {{ $c.epsilon | toJson }}
refresh_ms: {{ $c.refresh_ms | toJson }}
prediction_ttl_s: {{ $c.prediction_ttl_s | toJson }}
arm_cooldown_s: {{ $c.arm_cooldown_s | toJson }}
key_prefix: {{ $c.key_prefix | default (printf "bandit:%s" (include "isvc.name" .)) | toJson }}
record_linger_ms: {{ $c.record_linger_ms | toJson }}
record_queue_size: {{ $c.record_queue_size | int }}
{{- end -}}

{{/* The bandit's Redis: the transformer's, password from the same Secret ($(REDIS_PASSWORD),
expanded by the kubelet; never in values or args). */}}
{{- define "isvc.banditRedis" -}}
{{- printf "%s://:$(REDIS_PASSWORD)@%s:%v/0" (ternary "rediss" "redis" (include "isvc.redisSSL" . | eq "true")) (include "isvc.redisHost" .) (include "isvc.redisPort" .) -}}
{{- end -}}

{{/* Checks of the bandit values JSON schema cannot express. */}}
{{- define "isvc.validateBandit" -}}
{{- $b := .Values.bandit -}}
{{- if $b.enabled }}
{{- range $other := list "collocated" "ensemble" "canary" }}
{{- if (index $.Values $other).enabled }}
{{- fail (printf "bandit.enabled and %s.enabled exclude each other: %s" $other (get (dict "collocated" "the arms are predictors, collocated mode has none" "ensemble" "the transformer refuses an ensemble together with a bandit" "canary" "a canary makes one arm serve two model versions; make the new model an arm instead") $other)) }}
{{- end }}
{{- end }}
{{- $names := list }}
{{- $uris := list $.Values.predictor.storageUri }}
{{- $own := 0 }}
{{- range $i, $a := $b.arms }}
{{- if has $a.name $names }}
{{- fail (printf "bandit.arms[%d].name %q: two arms with the same name" $i $a.name) }}
{{- end }}
{{- $names = append $names $a.name }}
{{- if hasKey $a "storageUri" }}
{{- if has $a.storageUri $uris }}
{{- fail (printf "bandit.arms[%d].storageUri %q is served by another arm or the predictor: each arm is a different model version" $i $a.storageUri) }}
{{- end }}
{{- $uris = append $uris $a.storageUri }}
{{- else if not $a.host }}
{{- $own = add $own 1 }}
{{- end }}
{{- if and $a.host $.Values.networkPolicy.enabled $.Values.egress.enabled (not $a.egressTo) }}
{{- fail (printf "bandit.arms[%d].egressTo is required with egress NetworkPolicies on: the transformer's egress must name the peers of %s (or egress.enabled=false)" $i $a.host) }}
{{- end }}
{{- end }}
{{- if gt $own 1 }}
{{- fail (printf "bandit.arms: %d arms without storageUri or host; only one can be the chart's predictor" $own) }}
{{- end }}
{{- if gt (mulf $b.config.floor (len $b.arms)) 1.0 }}
{{- fail (printf "bandit.config.floor: %v x %d arms exceeds 1" $b.config.floor (len $b.arms)) }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Egress of the transformer to the bandit arms deployed elsewhere (arms with host). */}}
{{- define "isvc.banditEgress" -}}
{{- if .Values.bandit.enabled }}
{{- range .Values.bandit.arms }}
{{- if .host }}
{{- $hostPort := splitList ":" .host }}
# bandit arm {{ .name }}: {{ .host }}
- to:
    {{- toYaml .egressTo | nindent 4 }}
  ports:
    - port: {{ if eq (len $hostPort) 2 }}{{ last $hostPort | int }}{{ else }}{{ ternary 443 80 (.useSsl | default false) }}{{ end }}
      protocol: TCP
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
How to reach the InferenceService and an example call; shared by this chart's NOTES.txt and
the umbrella's. include "isvc.notesEndpoint" <context with .Values = this chart's values>
*/}}
{{- define "isvc.notesEndpoint" -}}
{{- $name := include "isvc.name" . -}}
{{- $ns := .Release.Namespace -}}
{{- $serverless := include "isvc.serverless" . -}}
Wait until it is ready:
  kubectl -n {{ $ns }} wait --for=condition=Ready inferenceservice/{{ $name }} --timeout=10m

In-cluster endpoint (from a pod in the cluster):
  URL=http://{{ include "isvc.entryService" . }}.{{ $ns }}.svc.cluster.local
{{- if .Values.networkPolicy.enabled }}
  (NetworkPolicy: in-namespace callers need the pod label {{ range $k, $v := .Values.networkPolicy.inferenceClientLabels }}{{ $k }}={{ $v }}{{ end }})
{{- end }}
{{- if .Values.clusterLocal }}

External access: none (clusterLocal: the InferenceService is cluster-local).
{{- else if $serverless }}

Through the ingress gateway (Knative mode: Kourier or Istio, in {{ join ", " .Values.networkPolicy.knativeNamespaces }}):
  HOST=$(kubectl -n {{ $ns }} get inferenceservice {{ $name }} -o jsonpath='{.status.url}' | cut -d/ -f3)
  GATEWAY=$(kubectl -n kourier-system get svc kourier -o jsonpath='{.status.loadBalancer.ingress[0].ip}')
  #  Istio: kubectl -n istio-system get svc istio-ingressgateway; no load balancer: a NodePort
  #  of that Service, or kubectl port-forward -n kourier-system svc/kourier 8080:80 (GATEWAY=localhost:8080)
  URL="http://$GATEWAY"
{{- else }}

Through the ingress gateway (Standard mode): KServe creates the route (Ingress or Gateway API,
per its inferenceservice-config) for the host in status.url; the gateway runs in one of
{{ join ", " .Values.networkPolicy.ingressNamespaces }}:
  HOST=$(kubectl -n {{ $ns }} get inferenceservice {{ $name }} -o jsonpath='{.status.url}' | cut -d/ -f3)
  GATEWAY=<address of your ingress controller / Gateway Service>
  URL="http://$GATEWAY"
{{- end }}

{{- if .Values.auth.enabled }}

Bearer tokens are required (docs/security.md); an infer-scope token:
  TOKEN=$(kubectl -n {{ $ns }} get secret {{ include "isvc.authSecret" . }} -o jsonpath='{.data.{{ .Values.auth.clientTokenKey }}}' | base64 -d)
{{- end }}

Example v2 inference (URL, and HOST through the gateway, as above):
  curl -s "$URL/v2/models/{{ $name }}/infer" ${HOST:+-H "Host: $HOST"} -H 'Content-Type: application/json'{{ if .Values.auth.enabled }} -H "Authorization: Bearer $TOKEN"{{ end }} -d '{
    "inputs": [
      {"name": "user_id", "datatype": "INT64", "shape": [1], "data": [42]},
      {"name": "session_duration_s", "datatype": "FP64", "shape": [1], "data": [35.0]},
      {"name": "hour_of_day", "datatype": "INT64", "shape": [1], "data": [20]}
    ],
    "parameters": {"return_features": false}}'
  -> outputs score, decision, model_version, prediction_source
Health: GET $URL/v2/health/ready, GET $URL/v2/models/{{ $name }}/ready
{{- if .Values.test.enabled }}

Smoke test (one inference from inside the namespace):
  helm test {{ .Release.Name }} -n {{ $ns }}
{{- end }}
{{- end -}}

{{/* One line on the model(s) served: include "isvc.notesModel" <context> */}}
{{- define "isvc.notesModel" -}}
{{- $name := include "isvc.name" . -}}
{{- if .Values.collocated.enabled -}}
InferenceService {{ $name }}, {{ .Values.deploymentMode }} mode, collocated: model {{ .Values.predictor.storageUri }} scored inside the transformer (no predictor, no canary)
{{- else -}}
InferenceService {{ $name }}, {{ .Values.deploymentMode }} mode: model {{ ternary .Values.canary.storageUri .Values.predictor.storageUri .Values.canary.enabled }} (ServingRuntime {{ include "isvc.runtimeName" . }})
{{- if .Values.canary.enabled }}
  Canary: {{ .Values.canary.trafficPercent }}% of the predictor traffic on {{ .Values.canary.storageUri }}, the rest on the previous rolled-out revision.
    Promote:   helm upgrade {{ .Release.Name }} <chart> -n {{ .Release.Namespace }} --reset-then-reuse-values --set {{ .prefix }}predictor.storageUri={{ .Values.canary.storageUri }} --set {{ .prefix }}canary.enabled=false
    Roll back: helm upgrade {{ .Release.Name }} <chart> -n {{ .Release.Namespace }} --reset-then-reuse-values --set {{ .prefix }}canary.trafficPercent=0
{{- end }}
{{- if .Values.bandit.enabled }}
  Bandit ({{ .Values.bandit.config.policy }}, ConfigMap {{ $name }}-bandit): each request scored by one arm of {{ range $i, $a := .Values.bandit.arms }}{{ if $i }}, {{ end }}{{ $a.name }}{{ end }}; responses carry prediction_id.
    Rewards:  POST $URL/v2/models/{{ $name }}/feedback {"prediction_id": "...", "reward": 1} (token scope write)
    Shares:   the transformer's /metrics, transformer_bandit_traffic_share{arm=...}
{{- end }}
{{- end }}
{{- $batch := .Values.batch | default dict }}
{{- if $batch.enabled }}
{{- $cron := include "isvc.batchName" . }}
  Scheduled batch predictions ({{ $batch.mode | default "cronjob" }}{{ if eq ($batch.mode | default "cronjob") "kuberay" }}: a KubeRay RayJob per run{{ else }}: local Ray in one pod{{ end }}), CronJob {{ $cron }} at "{{ $batch.schedule | default "41 2 * * *" }}"{{ if ne .Values.transformer.mode "precomputed" }}; the transformer is in {{ .Values.transformer.mode }} mode, set {{ .prefix }}transformer.mode=precomputed to serve them{{ end }}.
    Run now:  kubectl -n {{ .Release.Namespace }} create job --from=cronjob/{{ $cron }} {{ $cron }}-now
    Summary:  the run's last log line, "batch summary: generation=... written=... failed=..."{{ if eq ($batch.mode | default "cronjob") "kuberay" }}
              (kubectl -n {{ .Release.Namespace }} get rayjobs; kubectl -n {{ .Release.Namespace }} logs job/<rayjob name>){{ end }}
{{- end }}
{{- end -}}

{{/* The stream worker, when on: what runs and how to publish an event.
include "isvc.notesStream" <context with .Values = this chart's values> */}}
{{- define "isvc.notesStream" -}}
{{- $w := .Values.streamWorker -}}
{{- if $w.enabled -}}
{{- $ns := .Release.Namespace -}}
{{- $host := include "isvc.redisHost" . -}}
Stream worker: Deployment {{ include "isvc.streamWorker" . }}, {{ if $w.keda.enabled }}{{ $w.keda.minReplicaCount }}-{{ $w.keda.maxReplicaCount }} pods scaled by KEDA on {{ $w.keda.pendingEntriesCount }} pending entries per pod{{ else }}{{ $w.replicas }} pod(s){{ end }},
consumer group {{ $w.group }} on the Redis Stream {{ $w.stream }}; decisions on {{ $w.outputStream }}, bad events on {{ $w.deadLetterStream }}
(docs/stream.md, event schema in docs/CONTRACT.md). Publish an event for user 42:
  REDIS_PASSWORD=$(kubectl -n {{ $ns }} get secret {{ include "isvc.redisSecret" . }} -o jsonpath='{.data.{{ .Values.redis.passwordKey }}}' | base64 -d)
{{- if eq $host (printf "%s-redis" .Release.Name) }}
  kubectl -n {{ $ns }} port-forward svc/{{ $host }} 6379:{{ include "isvc.redisPort" . }} &
  export REDISCLI_AUTH="$REDIS_PASSWORD" R="-h 127.0.0.1 -p 6379"
{{- else }}
  export REDISCLI_AUTH="$REDIS_PASSWORD" R="-h {{ $host }} -p {{ include "isvc.redisPort" . }}{{ if eq (include "isvc.redisSSL" .) "true" }} --tls{{ end }}"
{{- end }}
  redis-cli $R XADD {{ $w.stream }} '*' event "{\"event_id\":\"$(date +%s%N)\",\"user_id\":42,\"event_time\":\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\",\"type\":\"click\",\"context\":{\"session_duration_s\":35,\"hour_of_day\":20}}"
  redis-cli $R XREVRANGE {{ $w.outputStream }} + - COUNT 1       # the new decision for user 42
  # a file of events: python -m transformer.stream publish events.jsonl --stream {{ $w.stream }} --redis "redis://:$REDIS_PASSWORD@127.0.0.1:6379/0"
The transformer then serves user 42 with those request-time fields from the cache
({{ if eq .Values.transformer.mode "cached" }}mode cached: "prediction_source": "cache"{{ else }}needs transformer.mode=cached; this release runs {{ .Values.transformer.mode }}{{ end }}).
Metrics: kubectl -n {{ $ns }} port-forward deploy/{{ include "isvc.streamWorker" . }} 8090 & curl -s localhost:8090/metrics | grep ^stream_
Scoring yet? curl -s localhost:8090/readyz   # "scoring": "ready", or what it waits for (e.g. the predictor's metadata)
{{- end }}
{{- end -}}

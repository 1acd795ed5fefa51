{{/*
A predictor-only InferenceService serving another model on the chart's ServingRuntime, with
the predictor's settings: the ensemble's second model, the bandit's arms. Its pods carry the
predictor's labels, so the predictor NetworkPolicies (ingress from the transformer, egress
DNS) cover it; `member` labels it as what it is.
include "isvc.extraPredictor" (dict "root" $ "name" <InferenceService name> "storageUri" <uri>
                                    "member" (dict <label key> <label value>))
*/}}
{{- define "isvc.extraPredictor" -}}
{{- $root := .root -}}
{{- $serverless := include "isvc.serverless" $root -}}
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: {{ .name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "isvc.commonLabels" $root | nindent 4 }}
    networking.kserve.io/visibility: cluster-local
  annotations:
    serving.kserve.io/deploymentMode: {{ $root.Values.deploymentMode }}
    {{- if $serverless }}
    {{- if $root.Values.metrics.enabled }}
    serving.kserve.io/enable-prometheus-scraping: "true"
    serving.kserve.io/enable-metric-aggregation: "true"
    {{- end }}
    {{- else }}
    serving.kserve.io/autoscalerClass: hpa
    serving.kserve.io/enable-prometheus-scraping: "false"
    {{- end }}
spec:
  predictor:
    serviceAccountName: {{ include "isvc.predictorSA" $root }}
    {{- include "isvc.componentScaling" (dict "root" $root "c" $root.Values.predictor) | nindent 4 }}
    {{- with $root.Values.imagePullSecrets }}
    imagePullSecrets:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    labels:
      {{- include "isvc.componentSelector" (dict "root" $root "component" "predictor") | nindent 6 }}
      {{- toYaml .member | nindent 6 }}
      {{- with $root.Values.predictor.labels }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    {{- with (include "isvc.componentAnnotations" (dict "root" $root "c" $root.Values.predictor) | trim) }}
    annotations:
      {{- . | nindent 6 }}
    {{- end }}
    model:
      modelFormat:
        name: {{ $root.Values.runtime.modelFormat.name }}
        version: {{ $root.Values.runtime.modelFormat.version | quote }}
      runtime: {{ include "isvc.runtimeName" $root }}
      protocolVersion: {{ $root.Values.predictor.protocolVersion }}
      storageUri: {{ .storageUri | quote }}
      resources:
        {{- toYaml $root.Values.predictor.resources | nindent 8 }}
{{- end -}}

{{/* Name prefix: "<release>-feast" unless global.feast.fullnameOverride. A global, not a
value of this chart: the inference-service chart derives the registry address from the same
value (isvc.feastRegistry), so the two cannot disagree. */}}
{{- define "feast.fullname" -}}
{{- $g := (.Values.global | default dict).feast | default dict -}}
{{- $g.fullnameOverride | default (printf "%s-feast" .Release.Name) | trunc 50 | trimSuffix "-" -}}
{{- end -}}

{{/* gRPC port of the registry server: global.feast.registryPort (shared with the transformer). */}}
{{- define "feast.registryPort" -}}
{{- ((.Values.global | default dict).feast | default dict).registryPort | default 6570 -}}
{{- end -}}

{{- define "feast.registryName" -}}{{ include "feast.fullname" . }}-registry{{- end -}}
{{- define "feast.featureServerName" -}}{{ include "feast.fullname" . }}-feature-server{{- end -}}
{{- define "feast.clientConfigName" -}}{{ include "feast.fullname" . }}-feature-store{{- end -}}

{{/* Labels every object carries besides its name/instance. */}}
{{- define "feast.commonLabels" -}}
app.kubernetes.io/part-of: feast-kserve
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Selector labels of one component: include "feast.selectorLabels" (list . "registry") */}}
{{- define "feast.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: feast-{{ index . 1 }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
{{- end -}}

{{- define "feast.labels" -}}
{{ include "feast.selectorLabels" . }}
app.kubernetes.io/component: {{ index . 1 }}
{{ include "feast.commonLabels" (index . 0) }}
{{- end -}}

{{/* The Feast image: repository[:tag][@digest] with global fallbacks. */}}
{{- define "feast.image" -}}
{{- $g := .Values.global | default dict -}}
{{- $repo := .Values.image.repository | default (printf "%s/feast-kserve-transformer" (required "global.imageRegistry is required: the registry the project images were pushed to (make push)" $g.imageRegistry)) -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" $repo .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (.Values.image.tag | default (required "global.imageTag is required: the tag the project images were pushed with (make push)" $g.imageTag)) -}}
{{- end -}}
{{- end -}}

{{- define "feast.redisHost" -}}
{{- $g := (.Values.global | default dict).redis | default dict -}}
{{- .Values.redis.host | default $g.host | default (printf "%s-redis" .Release.Name) -}}
{{- end -}}

{{- define "feast.redisPort" -}}
{{- $g := (.Values.global | default dict).redis | default dict -}}
{{- .Values.redis.port | default $g.port | default 6379 -}}
{{- end -}}

{{- define "feast.redisSecret" -}}
{{- $g := (.Values.global | default dict).redis | default dict -}}
{{- .Values.redis.existingSecret | default $g.existingSecret | default (printf "%s-redis-auth" .Release.Name) -}}
{{- end -}}

{{/* Env of every Feast client: config path + Redis connection string built from the Secret. */}}
{{- define "feast.clientEnv" -}}
- name: FEAST_FS_YAML_FILE_PATH
  value: /etc/feast/feature_store.yaml
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "feast.redisSecret" . }}
      key: {{ .Values.redis.passwordKey }}
# Feast's connection string; $(REDIS_PASSWORD) is expanded by the kubelet.
- name: REDIS_CONNECTION_STRING
  value: {{ printf "%s:%v,password=$(REDIS_PASSWORD)%s" (include "feast.redisHost" .) (include "feast.redisPort" .) (ternary ",ssl=true" "" (or .Values.redis.ssl ((.Values.global | default dict).redis | default dict).ssl | default false)) | quote }}
{{- end -}}

{{/* Pod spec parts shared by every Feast pod. */}}
{{- define "feast.podCommon" -}}
serviceAccountName: {{ include "feast.fullname" . }}
automountServiceAccountToken: false
enableServiceLinks: false
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Bootstrap/materialize job pod template: include "feast.jobPod" (dict "root" . "steps" "..." "demo" bool "resources" ... "component" "...") */}}
{{- define "feast.jobPod" -}}
{{- $root := .root -}}
metadata:
  labels:
    {{- include "feast.labels" (list $root .component) | nindent 4 }}
    {{- toYaml $root.Values.redisClientLabels | nindent 4 }}
    {{- toYaml $root.Values.networkPolicy.registryClientLabels | nindent 4 }}
    {{- with $root.Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $root.Values.podAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  restartPolicy: OnFailure
  {{- include "feast.podCommon" $root | nindent 2 }}
  containers:
    - name: {{ .component }}
      image: {{ include "feast.image" $root | quote }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      command: ["/bin/sh", "/opt/feast-bootstrap/feast-bootstrap.sh"]
      env:
        - name: FEAST_BOOTSTRAP_STEPS
          value: {{ .steps | quote }}
        - name: FEAST_REPO_SRC
          value: {{ $root.Values.repoPath | quote }}
        - name: FEAST_WAIT_FOR
          value: {{ printf "%s:%v %s:%v" (include "feast.registryName" $root) (include "feast.registryPort" $root) (include "feast.redisHost" $root) (include "feast.redisPort" $root) | quote }}
        - name: GENERATE_DEMO_DATA
          value: {{ .demo | quote }}
        {{- include "feast.clientEnv" $root | nindent 8 }}
      resources:
        {{- toYaml .resources | nindent 8 }}
      securityContext:
        {{- toYaml $root.Values.containerSecurityContext | nindent 8 }}
      volumeMounts:
        - name: config
          mountPath: /etc/feast
          readOnly: true
        - name: script
          mountPath: /opt/feast-bootstrap
          readOnly: true
        - name: work
          mountPath: /work
        - name: tmp
          mountPath: /tmp
  volumes:
    - name: config
      configMap:
        name: {{ include "feast.clientConfigName" $root }}
    - name: script
      configMap:
        name: {{ include "feast.fullname" $root }}-bootstrap
    - name: work
      emptyDir:
        sizeLimit: 2Gi
    - name: tmp
      emptyDir:
        sizeLimit: 1Gi
{{- end -}}

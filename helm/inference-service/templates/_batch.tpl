{{/* Scheduled batch predictions (values `batch`): names, labels and pod parts shared by the
plain CronJob (batch.mode cronjob) and the KubeRay RayJob (batch.mode kuberay). */}}
{{- define "isvc.batchName" -}}
{{- printf "%s-batch" (include "isvc.name" .) -}}
{{- end -}}

{{/* The model claim and directory from predictor.storageUri (pvc://<claim>/<dir>): the batch
reads the same model version the predictor serves. */}}
{{- define "isvc.batchModelClaim" -}}
{{- $uri := .Values.predictor.storageUri -}}
{{- if not (hasPrefix "pvc://" $uri) -}}
{{- fail (printf "batch.enabled needs predictor.storageUri pvc://<claim>/<dir> (the batch pods mount the same model volume), not %q" $uri) -}}
{{- end -}}
{{- $parts := splitn "/" 2 (trimPrefix "pvc://" $uri) -}}
{{- $parts._0 -}}
{{- end -}}
{{- define "isvc.batchModelPath" -}}
{{- $parts := splitn "/" 2 (trimPrefix "pvc://" .Values.predictor.storageUri) -}}
{{- $parts._1 | default "" -}}
{{- end -}}

{{/* Pod labels of every batch pod (job pod, Ray head, Ray workers, RayJob submitter): the
batch NetworkPolicies select on them; Redis and the registry admit them. */}}
{{- define "isvc.batchPodLabels" -}}
{{ include "isvc.componentSelector" (dict "root" . "component" "batch") }}
app.kubernetes.io/name: {{ include "isvc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: batch
feast-kserve.io/redis-client: "true"
feast-kserve.io/registry-client: "true"
{{- end -}}

{{- define "isvc.batchImage" -}}
{{- include "isvc.image" (dict "root" . "image" .Values.batch.image "name" "feast-kserve-batch") -}}
{{- end -}}

{{/* Pod-level fields of every batch pod. */}}
{{- define "isvc.batchPodSpec" -}}
automountServiceAccountToken: false
enableServiceLinks: false
securityContext:
  runAsNonRoot: true
  runAsUser: 10001
  runAsGroup: 10001
  fsGroup: 10001
  seccompProfile:
    type: RuntimeDefault
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Env of the container that runs the batch driver (the job pod, or the Ray head). */}}
{{- define "isvc.batchEnv" -}}
{{- $g := (.Values.global | default dict).redis | default dict -}}
- name: FEAST_FS_YAML_FILE_PATH
  value: /etc/feast/feature_store.yaml
- name: FEAST_REPO_SRC
  value: {{ .Values.feast.repoPath | quote }}
- name: GENERATE_DEMO_DATA
  value: {{ .Values.batch.generateDemoData | quote }}
- name: BATCH_MODEL_DIR
  value: /mnt/models
- name: BATCH_WORKERS
  value: {{ .Values.batch.workers | quote }}
- name: BATCH_SIZE
  value: {{ .Values.batch.batchSize | quote }}
- name: BATCH_WRITE_CHUNK
  value: {{ .Values.batch.writeChunk | quote }}
- name: BATCH_CONTEXT
  value: {{ .Values.batch.context | quote }}
- name: BATCH_PUSHGATEWAY_URL
  value: {{ .Values.batch.pushgatewayUrl | quote }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "isvc.redisSecret" . }}
      key: {{ .Values.redis.passwordKey }}
# Feast's connection string; $(REDIS_PASSWORD) is expanded by the kubelet.
- name: REDIS_CONNECTION_STRING
  value: {{ printf "%s:%v,password=$(REDIS_PASSWORD)%s" (include "isvc.redisHost" .) (include "isvc.redisPort" .) (ternary ",ssl=true" "" (or .Values.redis.ssl ($g.ssl | default false))) | quote }}
{{- end -}}

{{/* Volume mounts of a batch container: include "isvc.batchMounts" (dict "root" . "driver" bool) */}}
{{- define "isvc.batchMounts" -}}
- name: model
  mountPath: /mnt/models
  {{- with include "isvc.batchModelPath" .root }}
  subPath: {{ . }}
  {{- end }}
  readOnly: true
- name: tmp
  mountPath: /tmp
- name: shm
  mountPath: /dev/shm
{{- if .driver }}
- name: feature-store
  mountPath: /etc/feast
  readOnly: true
- name: script
  mountPath: /opt/batch
  readOnly: true
- name: work
  mountPath: /work
{{- end }}
{{- end -}}

{{- define "isvc.batchVolumes" -}}
- name: model
  persistentVolumeClaim:
    claimName: {{ include "isvc.batchModelClaim" .root }}
    readOnly: true
- name: tmp
  emptyDir:
    sizeLimit: 2Gi
# Ray's object store (plasma) lives in shared memory.
- name: shm
  emptyDir:
    medium: Memory
    sizeLimit: {{ .root.Values.batch.shmSize }}
{{- if .driver }}
- name: feature-store
  configMap:
    name: {{ include "isvc.name" .root }}-feature-store
- name: script
  configMap:
    name: {{ include "isvc.batchName" .root }}
- name: work
  emptyDir:
    sizeLimit: 2Gi
{{- end }}
{{- end -}}

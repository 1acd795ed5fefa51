{{/*
The component that reads Feast: the transformer (in front of the predictor) or, in collocated
mode, the single predictor component that scores the model in-process.
include "isvc.featureComponent" (dict "root" . "collocated" bool)
Both take the transformer's settings (scaling, resources, service account, labels).
*/}}
{{- define "isvc.featureComponent" -}}
{{- $root := .root -}}
{{- $collocated := .collocated -}}
{{- $t := $root.Values.transformer -}}
{{- $bandit := and $root.Values.bandit.enabled (not $collocated) -}}
serviceAccountName: {{ include "isvc.transformerSA" $root }}
{{ include "isvc.componentScaling" (dict "root" $root "c" $t) }}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
labels:
  {{- include "isvc.componentSelector" (dict "root" $root "component" "transformer") | nindent 2 }}
  # NetworkPolicy access to Redis and to the Feast registry server.
  feast-kserve.io/redis-client: "true"
  feast-kserve.io/registry-client: "true"
  {{- with $t.labels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
annotations:
  prometheus.kserve.io/port: "8080"
  prometheus.kserve.io/path: /metrics
  checksum/feature-store: {{ include (print $root.Template.BasePath "/configmap-feast.yaml") $root | sha256sum | trunc 16 | quote }}
  {{- if and $root.Values.ensemble.enabled (not $collocated) }}
  # new weights or members: new pods (the rules file is read at start-up)
  checksum/ensemble-rules: {{ include "isvc.ensembleRules" $root | sha256sum | trunc 16 | quote }}
  {{- end }}
  {{- if $bandit }}
  # new arms or policy: new pods (the bandit file is read at start-up)
  checksum/bandit: {{ include "isvc.banditFile" $root | sha256sum | trunc 16 | quote }}
  {{- end }}
  {{- with (include "isvc.componentAnnotations" (dict "root" $root "c" $t) | trim) }}
  {{- . | nindent 2 }}
  {{- end }}
{{- include "isvc.kserveLogger" (dict "root" $root "component" "transformer") | nindent 0 }}
containers:
  - name: kserve-container
    {{- if $collocated }}
    image: {{ include "isvc.image" (dict "root" $root "image" $root.Values.collocated.image "name" "feast-kserve-collocated") | quote }}
    imagePullPolicy: {{ $root.Values.collocated.image.pullPolicy }}
    {{- else }}
    image: {{ include "isvc.image" (dict "root" $root "image" $t.image "name" "feast-kserve-transformer") | quote }}
    imagePullPolicy: {{ $t.image.pullPolicy }}
    {{- end }}
    args:
      {{- if $collocated }}
      # A predictor container gets no injected flags: name and port are set here.
      - --model_name
      - {{ include "isvc.name" $root }}
      - --http_port
      - "8080"
      - --collocated_model_dir
      - /mnt/models
      {{- else }}
      - --predictor_protocol
      - {{ $root.Values.predictor.protocolVersion }}
      {{- end }}
      - --feast_repo_path
      - {{ $root.Values.feast.repoPath | quote }}
      - --mode
      - {{ $t.mode }}
      {{- if $bandit }}
      # the bandit's arms and policy (docs/multi-model.md#deploying-the-bandit)
      - --bandit_file
      - /etc/transformer-bandit/bandit.yaml
      {{- end }}
      {{- with $t.extraArgs }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    env:
      {{- if $collocated }}
      # KServe's storage initializer puts this model at /mnt/models (a pvc:// is mounted).
      - name: STORAGE_URI
        value: {{ $root.Values.predictor.storageUri | quote }}
      {{- else }}
      {{- $coldPredictor := eq (include "isvc.coldPredictor" $root) "true" }}
      # Predictor call timeout and start-up wait{{ if $coldPredictor }}: long, the predictor scales to zero and its first request after idling waits for a cold start{{ end }}.
      {{- $wait := $t.predictorWaitSeconds }}
      {{- if kindIs "invalid" $wait }}{{ $wait = ternary 300 60 $coldPredictor }}{{ end }}
      - name: TRANSFORMER_PREDICTOR_TIMEOUT_S
        value: {{ $t.predictorTimeoutSeconds | default (ternary 120 2 $coldPredictor) | quote }}
      - name: TRANSFORMER_PREDICTOR_WAIT_S
        value: {{ $wait | quote }}
      {{- end }}
      # A first install starts the transformer before the bootstrap Job's feast apply.
      - name: TRANSFORMER_REGISTRY_WAIT_S
        value: "240"
      - name: FEAST_FS_YAML_FILE_PATH
        value: /etc/feast/feature_store.yaml
      - name: REDIS_PASSWORD
        valueFrom:
          secretKeyRef:
            name: {{ include "isvc.redisSecret" $root }}
            key: {{ $root.Values.redis.passwordKey }}
      # Feast's connection string; $(REDIS_PASSWORD) is expanded by the kubelet.
      - name: REDIS_CONNECTION_STRING
        value: {{ include "isvc.redisConnectionString" $root | quote }}
      {{- if $bandit }}
      # the bandit's statistics and prediction records, in the same Redis
      - name: TRANSFORMER_BANDIT_REDIS
        value: {{ include "isvc.banditRedis" $root | quote }}
      {{- end }}
      {{- include "isvc.authEnv" $root | nindent 6 }}
      {{- if and $root.Values.ensemble.enabled (not $collocated) }}
      # the ensemble's members and weights (docs/multi-model.md)
      - name: TRANSFORMER_RULES_FILE
        value: /etc/transformer-rules/rules.yaml
      {{- end }}
      {{- with $t.extraEnv }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    ports:
      - containerPort: 8080
        protocol: TCP
    readinessProbe:
      httpGet:
        path: /v2/health/ready
        port: 8080
      periodSeconds: 5
      timeoutSeconds: 3
      failureThreshold: 3
    # Start-up may wait for the predictor's metadata (up to 300 s when it scales to zero)
    # and then for the Feast registry (240 s, a first install's feast apply): 550 s,
    # inside Knative's 10 min progress deadline, before the liveness probe takes over.
    startupProbe:
      httpGet:
        path: /v2/health/live
        port: 8080
      # every second: the first success (a cold start) is not held back by a coarse period
      periodSeconds: 1
      timeoutSeconds: 1
      failureThreshold: 550
    livenessProbe:
      httpGet:
        path: /v2/health/live
        port: 8080
      periodSeconds: 10
      timeoutSeconds: 3
      failureThreshold: 6
    resources:
      {{- toYaml $t.resources | nindent 6 }}
    securityContext:
      {{- toYaml $root.Values.containerSecurityContext | nindent 6 }}
    volumeMounts:
      - name: feast-config
        mountPath: /etc/feast
        readOnly: true
      - name: tmp
        mountPath: /tmp
      {{- include "isvc.authVolumeMount" $root | nindent 6 }}
      {{- if and $root.Values.ensemble.enabled (not $collocated) }}
      - name: ensemble-rules
        mountPath: /etc/transformer-rules
        readOnly: true
      {{- end }}
      {{- if $bandit }}
      - name: bandit
        mountPath: /etc/transformer-bandit
        readOnly: true
      {{- end }}
volumes:
  - name: feast-config
    configMap:
      name: {{ include "isvc.name" $root }}-feature-store
  - name: tmp
    emptyDir:
      sizeLimit: 256Mi
  {{- include "isvc.authVolume" $root | nindent 2 }}
  {{- if and $root.Values.ensemble.enabled (not $collocated) }}
  - name: ensemble-rules
    configMap:
      name: {{ include "isvc.name" $root }}-ensemble-rules
  {{- end }}
  {{- if $bandit }}
  - name: bandit
    configMap:
      name: {{ include "isvc.name" $root }}-bandit
  {{- end }}
{{- end -}}

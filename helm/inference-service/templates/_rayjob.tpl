{{/* The RayJob one batch run creates (batch.mode kuberay), validated against KubeRay's CRD
schema in tests/deploy. Head: runs the driver (the batch script) and Ray's GCS and dashboard
(job submission); workers: score. Every pod runs the batch image as uid 10001 with a
read-only root filesystem. */}}
{{- define "isvc.batchRayJob" -}}
{{- $k := .Values.batch.kuberay -}}
{{- $name := include "isvc.batchName" . -}}
apiVersion: ray.io/v1
kind: RayJob
metadata:
  generateName: {{ $name }}-
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "isvc.commonLabels" . | nindent 4 }}
    app.kubernetes.io/component: batch
spec:
  entrypoint: /bin/sh /opt/batch/batch.sh
  submissionMode: K8sJobMode
  shutdownAfterJobFinishes: true
  ttlSecondsAfterFinished: {{ $k.ttlSecondsAfterFinished }}
  activeDeadlineSeconds: {{ .Values.batch.activeDeadlineSeconds }}
  backoffLimit: 0
  submitterPodTemplate:
    metadata:
      labels:
        {{- include "isvc.batchPodLabels" . | nindent 8 }}
    spec:
      restartPolicy: Never
      {{- include "isvc.batchPodSpec" . | nindent 6 }}
      containers:
        - name: ray-job-submitter
          image: {{ include "isvc.batchImage" . | quote }}
          imagePullPolicy: {{ .Values.batch.image.pullPolicy }}
          env:
            - name: HOME
              value: /tmp
          resources:
            {{- toYaml $k.submitter.resources | nindent 12 }}
          securityContext:
            {{- toYaml .Values.containerSecurityContext | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: 64Mi
  rayClusterSpec:
    rayVersion: {{ $k.rayVersion | quote }}
    headGroupSpec:
      rayStartParams:
        # no tasks on the head: it runs the driver, GCS and the dashboard
        num-cpus: "0"
        dashboard-host: "0.0.0.0"
      template:
        metadata:
          labels:
            {{- include "isvc.batchPodLabels" . | nindent 12 }}
        spec:
          {{- include "isvc.batchPodSpec" . | nindent 10 }}
          containers:
            - name: ray-head
              image: {{ include "isvc.batchImage" . | quote }}
              imagePullPolicy: {{ .Values.batch.image.pullPolicy }}
              env:
                - name: HOME
                  value: /tmp
                - name: BATCH_RAY_ADDRESS
                  value: auto
                {{- include "isvc.batchEnv" . | nindent 16 }}
              ports:
                - name: gcs
                  containerPort: 6379
                - name: dashboard
                  containerPort: 8265
                - name: client
                  containerPort: 10001
              resources:
                {{- toYaml .Values.batch.resources | nindent 16 }}
              securityContext:
                {{- toYaml .Values.containerSecurityContext | nindent 16 }}
              volumeMounts:
                {{- include "isvc.batchMounts" (dict "root" . "driver" true) | nindent 16 }}
          volumes:
            {{- include "isvc.batchVolumes" (dict "root" . "driver" true) | nindent 12 }}
    workerGroupSpecs:
      - groupName: score
        replicas: {{ .Values.batch.workers }}
        minReplicas: {{ .Values.batch.workers }}
        maxReplicas: {{ .Values.batch.workers }}
        rayStartParams: {}
        template:
          metadata:
            labels:
              {{- include "isvc.batchPodLabels" . | nindent 14 }}
          spec:
            {{- include "isvc.batchPodSpec" . | nindent 12 }}
            containers:
              - name: ray-worker
                image: {{ include "isvc.batchImage" . | quote }}
                imagePullPolicy: {{ .Values.batch.image.pullPolicy }}
                env:
                  - name: HOME
                    value: /tmp
                resources:
                  {{- toYaml $k.workerResources | nindent 18 }}
                securityContext:
                  {{- toYaml .Values.containerSecurityContext | nindent 18 }}
                volumeMounts:
                  {{- include "isvc.batchMounts" (dict "root" . "driver" false) | nindent 18 }}
            volumes:
              {{- include "isvc.batchVolumes" (dict "root" . "driver" false) | nindent 14 }}
{{- end -}}

{{/* Bearer-token auth of the transformer (docs/security.md): the Secret, and the env,
volume and mount the InferenceService's transformer container includes. */}}
{{- define "isvc.authSecret" -}}
{{- .Values.auth.existingSecret | default (printf "%s-transformer-auth" (include "isvc.name" .)) -}}
{{- end -}}

{{- define "isvc.authEnv" -}}
{{- if .Values.auth.enabled }}
# bearer tokens (scope:token lines) from the mounted Secret, re-read when it is rotated
- name: TRANSFORMER_AUTH_TOKENS_FILE
  value: /var/run/secrets/transformer-auth/{{ .Values.auth.tokensKey }}
- name: TRANSFORMER_AUTH_RELOAD_S
  value: {{ .Values.auth.reloadSeconds | quote }}
- name: TRANSFORMER_AUTH_PROBES
  value: {{ .Values.auth.probes | quote }}
{{- end }}
{{- end -}}

{{- define "isvc.authVolumeMount" -}}
{{- if .Values.auth.enabled }}
- name: transformer-auth
  mountPath: /var/run/secrets/transformer-auth
  readOnly: true
{{- end }}
{{- end -}}

{{- define "isvc.authVolume" -}}
{{- if .Values.auth.enabled }}
# a whole-Secret volume (no subPath): the kubelet swaps it in place on rotation
- name: transformer-auth
  secret:
    secretName: {{ include "isvc.authSecret" . }}
    items:
      - key: {{ .Values.auth.tokensKey }}
        path: {{ .Values.auth.tokensKey }}
{{- end }}
{{- end -}}

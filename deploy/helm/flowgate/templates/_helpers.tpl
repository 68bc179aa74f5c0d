{{- define "flowgate.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "flowgate.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* selector labels of one component: include "flowgate.selector" (list $ "web") */}}
{{- define "flowgate.selector" -}}
app.kubernetes.io/name: {{ (index . 0).Chart.Name }}
app.kubernetes.io/instance: {{ (index . 0).Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "flowgate.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "flowgate.secretName" -}}
{{- if .Values.secrets.existingSecret -}}
{{- .Values.secrets.existingSecret -}}
{{- else -}}
{{- printf "%s-secrets" (include "flowgate.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "flowgate.mlflowUrl" -}}
{{- if .Values.mlflow.enabled -}}
{{- printf "http://%s-mlflow:%v" (include "flowgate.fullname" .) .Values.mlflow.port -}}
{{- else -}}
{{- required "mlflow.url is required when mlflow.enabled is false" .Values.mlflow.url -}}
{{- end -}}
{{- end -}}

{{/* The environment every Flowgate process gets; secrets are files (<NAME>_FILE). */}}
{{- define "flowgate.env" -}}
- {name: FLOWGATE_ENV, value: production}
- {name: DATABASE_URL_FILE, value: /run/secrets/flowgate/database-url}
- {name: SECRET_KEY_FILE, value: /run/secrets/flowgate/secret-key}
- {name: FLOWGATE_ENCRYPTION_KEY_FILE, value: /run/secrets/flowgate/encryption-key}
- {name: METRICS_TOKEN_FILE, value: /run/secrets/flowgate/metrics-token}
{{- if .Values.config.redisUrl }}
- {name: REDIS_URL, value: {{ .Values.config.redisUrl | quote }}}
{{- else }}
- {name: REDIS_URL_FILE, value: /run/secrets/flowgate/redis-url}
{{- end }}
- {name: SITE_URL, value: {{ .Values.config.siteUrl | quote }}}
- {name: ALLOWED_HOSTS, value: {{ append .Values.config.allowedHosts "localhost" | join "," | quote }}}
- {name: CSRF_TRUSTED_ORIGINS, value: {{ .Values.config.csrfTrustedOrigins | join "," | quote }}}
- {name: MLFLOW_TRACKING_URI, value: {{ include "flowgate.mlflowUrl" . | quote }}}
- {name: MODEL_SERVICE_URL, value: {{ printf "http://%s-models:%v" (include "flowgate.fullname" .) .Values.models.port | quote }}}
- {name: OPA_URL, value: {{ .Values.config.opaUrl | quote }}}
- {name: TRACING_EXPORTER, value: {{ .Values.config.tracingExporter | quote }}}
{{- with .Values.config.otlpEndpoint }}
- {name: OTEL_EXPORTER_OTLP_ENDPOINT, value: {{ . | quote }}}
{{- end }}
{{- range $name, $value := .Values.config.extraEnv }}
- {name: {{ $name }}, value: {{ $value | quote }}}
{{- end }}
{{- end -}}

{{- define "flowgate.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities: {drop: [ALL]}
{{- end -}}

{{- define "flowgate.podCommon" -}}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
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

{{/* HTTP probe headers: the Host the settings allow, and the scheme the proxy gives. */}}
{{- define "flowgate.probeHeaders" -}}
httpHeaders:
  - {name: Host, value: localhost}
  - {name: X-Forwarded-Proto, value: https}
{{- end -}}

{{/* One Flowgate process as a Deployment. Arguments (a dict): root, component, replicas
(omitted when an autoscaler owns them), resources, probes (YAML), env (extra YAML), ports,
strategy, grace, image, podExtra (YAML: nodeSelector and tolerations of its own). */}}
{{- define "flowgate.deployment" -}}
{{- $ := .root -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "flowgate.fullname" $ }}-{{ .component }}
  labels:
    {{- include "flowgate.labels" $ | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  {{- if hasKey . "replicas" }}
  replicas: {{ .replicas }}
  {{- end }}
  {{- with .strategy }}
  strategy:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "flowgate.selector" (list $ .component) | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "flowgate.labels" $ | nindent 8 }}
        app.kubernetes.io/component: {{ .component }}
      annotations:
        checksum/config: {{ toJson $.Values.config | sha256sum | trunc 16 }}
    spec:
      {{- include "flowgate.podCommon" $ | nindent 6 }}
      {{- with .podExtra }}
      {{- . | nindent 6 }}
      {{- end }}
      automountServiceAccountToken: false
      terminationGracePeriodSeconds: {{ .grace | default 30 }}
      containers:
        - name: {{ .component }}
          image: {{ .image | default (include "flowgate.image" $) }}
          imagePullPolicy: {{ $.Values.image.pullPolicy }}
          args: [{{ .args | default .component }}]
          env:
            {{- if not .bare }}
            {{- include "flowgate.env" $ | nindent 12 }}
            {{- end }}
            {{- with .env }}
            {{- . | nindent 12 }}
            {{- end }}
          {{- with .ports }}
          ports:
            {{- . | nindent 12 }}
          {{- end }}
          {{- with .probes }}
          {{- . | nindent 10 }}
          {{- end }}
          resources:
            {{- toYaml .resources | nindent 12 }}
          securityContext:
            {{- include "flowgate.containerSecurity" $ | nindent 12 }}
          volumeMounts:
            {{- if not .bare }}
            - {name: secrets, mountPath: /run/secrets/flowgate, readOnly: true}
            {{- end }}
            - {name: tmp, mountPath: /tmp}
            - {name: var, mountPath: /var/lib/flowgate}
      volumes:
        {{- if not .bare }}
        - name: secrets
          secret:
            secretName: {{ include "flowgate.secretName" $ }}
            defaultMode: 0400
        {{- end }}
        - {name: tmp, emptyDir: {}}
        - {name: var, emptyDir: {}}
{{- end -}}

{{- define "flowgate.service" -}}
{{- $ := .root -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "flowgate.fullname" $ }}-{{ .component }}
  labels:
    {{- include "flowgate.labels" $ | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  selector:
    {{- include "flowgate.selector" (list $ .component) | nindent 4 }}
  ports:
    - {name: http, port: {{ .port }}, targetPort: http}
{{- end -}}

{{- define "flowgate.pdb" -}}
{{- $ := .root -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "flowgate.fullname" $ }}-{{ .component }}
  labels:
    {{- include "flowgate.labels" $ | nindent 4 }}
spec:
  maxUnavailable: {{ .maxUnavailable }}
  selector:
    matchLabels:
      {{- include "flowgate.selector" (list $ .component) | nindent 6 }}
{{- end -}}

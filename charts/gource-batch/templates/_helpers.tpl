{{/* vim: set filetype=mustache: */}}
{{/*
Chart name, truncated to 63 characters (a DNS label).
*/}}
{{- define "gource-batch.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified name: <release>-<chart> unless the release name already contains it.
Truncated to 40 characters so that "<fullname>-processor-r<revision>" and the names the
loader launches ("<fullname>-processor-YYYYmmdd-HHMMSS-xxxx") stay within 63.
*/}}
{{- define "gource-batch.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "gource-batch.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels: name and instance (the release). The loader finds "its" processor Jobs
by app.kubernetes.io/instance + app.kubernetes.io/component=processor.
*/}}
{{- define "gource-batch.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gource-batch.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "gource-batch.labels" -}}
helm.sh/chart: {{ include "gource-batch.chart" . }}
{{ include "gource-batch.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: gource-batch
{{- end }}

{{- define "gource-batch.processorImage" -}}
{{- printf "%s:%s" .Values.image.processor.repository (default .Chart.AppVersion .Values.image.processor.tag) }}
{{- end }}

{{- define "gource-batch.loaderImage" -}}
{{- printf "%s:%s" .Values.image.loader.repository (default .Chart.AppVersion .Values.image.loader.tag) }}
{{- end }}

{{- define "gource-batch.processorServiceAccountName" -}}
{{- if .Values.serviceAccount.processor.create }}
{{- default (printf "%s-processor" (include "gource-batch.fullname" .)) .Values.serviceAccount.processor.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.processor.name }}
{{- end }}
{{- end }}

{{- define "gource-batch.loaderServiceAccountName" -}}
{{- if .Values.serviceAccount.loader.create }}
{{- default (printf "%s-loader" (include "gource-batch.fullname" .)) .Values.serviceAccount.loader.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.loader.name }}
{{- end }}
{{- end }}

{{/* The Secret holding the bundled broker's credentials and the AMQP URL. */}}
{{- define "gource-batch.brokerSecretName" -}}
{{- if .Values.broker.bundled.enabled }}
{{- default (printf "%s-broker" (include "gource-batch.fullname" .)) .Values.broker.bundled.existingSecret }}
{{- else }}
{{- required "broker.external.existingSecret is required when broker.bundled.enabled is false" .Values.broker.external.existingSecret }}
{{- end }}
{{- end }}

{{- define "gource-batch.brokerUrlKey" -}}
{{- if .Values.broker.bundled.enabled }}amqp-url{{ else }}{{ .Values.broker.external.urlKey }}{{ end }}
{{- end }}

{{- define "gource-batch.brokerHost" -}}
{{- printf "%s-rabbitmq" (include "gource-batch.fullname" .) }}
{{- end }}

{{/*
The bundled broker's host in its AMQP URL, qualified by the namespace: KEDA's operator
reads the same URL (hostFromEnv) from a namespace of its own, where the short name
does not resolve.
*/}}
{{- define "gource-batch.brokerAddress" -}}
{{- printf "%s.%s.svc" (include "gource-batch.brokerHost" .) .Release.Namespace }}
{{- end }}

{{/* True (non-empty) when the chart has a batch of requests to load. */}}
{{- define "gource-batch.hasRequests" -}}
{{- if or .Values.requests.inline .Values.requests.existingConfigMap }}true{{ end }}
{{- end }}

{{- define "gource-batch.requestsConfigMap" -}}
{{- default (printf "%s-requests" (include "gource-batch.fullname" .)) .Values.requests.existingConfigMap }}
{{- end }}

{{/* Environment shared by loader and processors: broker settings and the AMQP URL. */}}
{{- define "gource-batch.brokerEnv" -}}
- name: AMQP_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "gource-batch.brokerSecretName" . }}
      key: {{ include "gource-batch.brokerUrlKey" . }}
{{- end }}

{{/* Job failure policy: exit 78 (configuration error) fails the Job, disruptions are ignored. */}}
{{- define "gource-batch.podFailurePolicy" -}}
podFailurePolicy:
  rules:
    - action: FailJob
      onExitCodes:
        containerName: {{ .container }}
        operator: In
        values: [78]
    - action: Ignore
      onPodConditions:
        - type: DisruptionTarget
          status: "True"
{{- end }}

{{/*
The processor Job's spec (without parallelism): rendered by processor-job.yaml, put into
the template ConfigMap the loader launches from, and the KEDA ScaledJob's jobTargetRef.
*/}}
{{- define "gource-batch.processorJobSpec" -}}
backoffLimit: {{ .Values.processor.backoffLimit }}
activeDeadlineSeconds: {{ .Values.processor.activeDeadlineSeconds }}
ttlSecondsAfterFinished: {{ .Values.processor.ttlSecondsAfterFinished }}
{{ include "gource-batch.podFailurePolicy" (dict "container" "processor") }}
template:
  metadata:
    labels:
      {{- include "gource-batch.selectorLabels" . | nindent 6 }}
      app.kubernetes.io/component: processor
      {{- with .Values.processor.podLabels }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    annotations:
      checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
      {{- with .Values.processor.podAnnotations }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
  spec:
    restartPolicy: Never
    serviceAccountName: {{ include "gource-batch.processorServiceAccountName" . }}
    automountServiceAccountToken: false
    enableServiceLinks: false
    terminationGracePeriodSeconds: {{ .Values.processor.terminationGracePeriodSeconds }}
    {{- with .Values.processor.priorityClassName }}
    priorityClassName: {{ . }}
    {{- end }}
    {{- with .Values.imagePullSecrets }}
    imagePullSecrets:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with .Values.processor.podSecurityContext }}
    securityContext:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    containers:
      - name: processor
        image: {{ include "gource-batch.processorImage" . }}
        imagePullPolicy: {{ .Values.image.processor.pullPolicy }}
        args: ["python", "-m", "processor"]
        envFrom:
          - configMapRef:
              name: {{ include "gource-batch.fullname" . }}-config
        env:
          {{- include "gource-batch.brokerEnv" . | nindent 10 }}
          {{- with .Values.output.existingSecret }}
          - name: AWS_ACCESS_KEY_ID
            valueFrom:
              secretKeyRef:
                name: {{ . }}
                key: AWS_ACCESS_KEY_ID
          - name: AWS_SECRET_ACCESS_KEY
            valueFrom:
              secretKeyRef:
                name: {{ . }}
                key: AWS_SECRET_ACCESS_KEY
          {{- end }}
          {{- with .Values.processor.extraEnv }}
          {{- toYaml . | nindent 10 }}
          {{- end }}
        ports:
          - name: metrics
            containerPort: {{ .Values.metrics.port }}
        resources:
          {{- toYaml .Values.processor.resources | nindent 10 }}
        {{- with .Values.processor.containerSecurityContext }}
        securityContext:
          {{- toYaml . | nindent 10 }}
        {{- end }}
        volumeMounts:
          - name: tmp
            mountPath: /tmp
          - name: work
            mountPath: /tmp/gource-batch
          {{- if .Values.git.credentials.existingSecret }}
          - name: git-credentials
            mountPath: /etc/gource-batch/git-credentials
            readOnly: true
          {{- end }}
          {{- if .Values.git.caBundle.existingConfigMap }}
          - name: ca
            mountPath: /etc/gource-batch/ca
            readOnly: true
          {{- end }}
          {{- with .Values.processor.extraVolumeMounts }}
          {{- toYaml . | nindent 10 }}
          {{- end }}
    volumes:
      - name: tmp
        emptyDir:
          sizeLimit: {{ .Values.processor.tmpSizeLimit }}
      - name: work
        emptyDir:
          sizeLimit: {{ .Values.processor.workDirSizeLimit }}
      {{- with .Values.git.credentials }}
      {{- if .existingSecret }}
      # GIT_CREDENTIALS_FILE: readable by the processor's group only, never written.
      - name: git-credentials
        secret:
          secretName: {{ .existingSecret }}
          defaultMode: 0440
          items:
            - key: {{ .key }}
              path: {{ .key }}
      {{- end }}
      {{- end }}
      {{- with .Values.git.caBundle }}
      {{- if .existingConfigMap }}
      # GIT_CA_BUNDLE: the certificate authorities git trusts for https.
      - name: ca
        configMap:
          name: {{ .existingConfigMap }}
          items:
            - key: {{ .key }}
              path: {{ .key }}
      {{- end }}
      {{- end }}
      {{- with .Values.processor.extraVolumes }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    {{- with .Values.processor.nodeSelector }}
    nodeSelector:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with .Values.processor.tolerations }}
    tolerations:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with .Values.processor.affinity }}
    affinity:
      {{- toYaml . | nindent 6 }}
    {{- end }}
{{- end }}

{{/*
The loader Job's spec. Arguments: (dict "root" $ "launch" bool).
*/}}
{{- define "gource-batch.loaderJobSpec" -}}
{{- $ := .root }}
{{- $launch := and .launch $.Values.loader.launch.enabled (not $.Values.keda.enabled) -}}
backoffLimit: {{ $.Values.loader.backoffLimit }}
activeDeadlineSeconds: {{ $.Values.loader.activeDeadlineSeconds }}
ttlSecondsAfterFinished: {{ $.Values.loader.ttlSecondsAfterFinished }}
{{ include "gource-batch.podFailurePolicy" (dict "container" "loader") }}
template:
  metadata:
    labels:
      {{- include "gource-batch.selectorLabels" $ | nindent 6 }}
      app.kubernetes.io/component: loader
  spec:
    restartPolicy: Never
    serviceAccountName: {{ include "gource-batch.loaderServiceAccountName" $ }}
    # The API token is mounted only when the loader launches the processor Job.
    automountServiceAccountToken: {{ $launch }}
    enableServiceLinks: false
    terminationGracePeriodSeconds: 30
    {{- with $.Values.imagePullSecrets }}
    imagePullSecrets:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with $.Values.loader.podSecurityContext }}
    securityContext:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    containers:
      - name: loader
        image: {{ include "gource-batch.loaderImage" $ }}
        imagePullPolicy: {{ $.Values.image.loader.pullPolicy }}
        args:
          - python
          - -m
          - loader
          - --file
          - /etc/gource-batch/requests/{{ $.Values.requests.key }}
          - --priority
          - {{ $.Values.requests.priority }}
          - --skip-invalid
          {{- if $launch }}
          - --launch-job-template
          - /etc/gource-batch/template/processor-job.yaml
          - --launch-min
          - {{ $.Values.loader.launch.minProcessors | quote }}
          - --launch-max
          - {{ $.Values.loader.launch.maxProcessors | quote }}
          - --requests-per-processor
          - {{ $.Values.loader.launch.requestsPerProcessor | quote }}
          {{- end }}
        envFrom:
          - configMapRef:
              name: {{ include "gource-batch.fullname" $ }}-config
        env:
          {{- include "gource-batch.brokerEnv" $ | nindent 10 }}
          {{- with $.Values.loader.extraEnv }}
          {{- toYaml . | nindent 10 }}
          {{- end }}
        resources:
          {{- toYaml $.Values.loader.resources | nindent 10 }}
        {{- with $.Values.loader.containerSecurityContext }}
        securityContext:
          {{- toYaml . | nindent 10 }}
        {{- end }}
        volumeMounts:
          - name: tmp
            mountPath: /tmp
          - name: requests
            mountPath: /etc/gource-batch/requests
            readOnly: true
          {{- if $launch }}
          - name: template
            mountPath: /etc/gource-batch/template
            readOnly: true
          {{- end }}
          {{- with $.Values.loader.extraVolumeMounts }}
          {{- toYaml . | nindent 10 }}
          {{- end }}
    volumes:
      - name: tmp
        emptyDir:
          sizeLimit: 64Mi
      - name: requests
        configMap:
          name: {{ include "gource-batch.requestsConfigMap" $ }}
      {{- if $launch }}
      - name: template
        configMap:
          name: {{ include "gource-batch.fullname" $ }}-processor-template
      {{- end }}
      {{- with $.Values.loader.extraVolumes }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    {{- with $.Values.loader.nodeSelector }}
    nodeSelector:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with $.Values.loader.tolerations }}
    tolerations:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with $.Values.loader.affinity }}
    affinity:
      {{- toYaml . | nindent 6 }}
    {{- end }}
{{- end }}

{{/*
Checks across values that values.schema.json cannot express; `helm install` fails with
the message. Included from configmap.yaml, which is always rendered.
*/}}
{{- define "gource-batch.validate" -}}
{{- $l := .Values.loader.launch }}
{{- if gt (int $l.minProcessors) (int $l.maxProcessors) }}
{{- fail (printf "loader.launch.minProcessors (%d) must not exceed loader.launch.maxProcessors (%d)" (int $l.minProcessors) (int $l.maxProcessors)) }}
{{- end }}
{{- $r := .Values.render }}
{{- if gt (int $r.framerate) (int $r.maxFramerate) }}
{{- fail "render.framerate must not exceed render.maxFramerate" }}
{{- end }}
{{- if gt (float64 $r.videoSeconds) (float64 $r.maxVideoSeconds) }}
{{- fail "render.videoSeconds must not exceed render.maxVideoSeconds" }}
{{- end }}
{{- if and $r.secondsPerDay (gt (float64 $r.secondsPerDay) (float64 $r.maxSecondsPerDay)) }}
{{- fail "render.secondsPerDay must not exceed render.maxSecondsPerDay" }}
{{- end }}
{{- $size := splitList "x" $r.resolution }}
{{- $max := splitList "x" $r.maxResolution }}
{{- if or (gt (int (index $size 0)) (int (index $max 0))) (gt (int (index $size 1)) (int (index $max 1))) }}
{{- fail "render.resolution must fit within render.maxResolution" }}
{{- end }}
{{- if and .Values.broker.bundled.enabled (le (mul (int .Values.broker.bundled.consumerTimeoutMinutes) 60) (int $r.timeoutSeconds)) }}
{{- fail "broker.bundled.consumerTimeoutMinutes must exceed render.timeoutSeconds, or the broker closes a rendering processor's channel" }}
{{- end }}
{{- if and .Values.requests.inline .Values.requests.existingConfigMap }}
{{- fail "set requests.inline or requests.existingConfigMap, not both" }}
{{- end }}
{{- range $component, $own := dict "processor" (list "tmp" "work" "git-credentials" "ca") "loader" (list "tmp" "requests" "template") }}
{{- range (index $.Values $component).extraVolumes }}
{{- if has .name $own }}
{{- fail (printf "%s.extraVolumes: %q is one of the chart's own volumes (%s); choose another name" $component .name (join ", " $own)) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

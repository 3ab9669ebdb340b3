{{/*
The chart name, overridable.
*/}}
{{- define "servestatic.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the release's objects: release-chart, unless the release name already
contains the chart name. Truncated to 63 characters (DNS label limit).
*/}}
{{- define "servestatic.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "servestatic.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every object.
*/}}
{{- define "servestatic.labels" -}}
helm.sh/chart: {{ include "servestatic.chart" . }}
{{ include "servestatic.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Selector labels: stable across upgrades, so they never change on an existing Deployment.
*/}}
{{- define "servestatic.selectorLabels" -}}
app.kubernetes.io/name: {{ include "servestatic.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The ServiceAccount the pods run as.
*/}}
{{- define "servestatic.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "servestatic.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image reference: a digest pins it; otherwise the tag, defaulting to the appVersion's
MAJOR.MINOR (0.1.0 -> 0.1), the tag the project's README builds and documents.
*/}}
{{- define "servestatic.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default (regexFind "^[0-9]+[.][0-9]+" .Chart.AppVersion)) }}
{{- end }}
{{- end }}

{{/*
terminationGracePeriodSeconds: the preStop pause plus gunicorn's graceful timeout plus a
margin, so in-flight requests finish before the kubelet sends SIGKILL. An explicit value
that is too short is refused rather than silently cutting requests off.
*/}}
{{- define "servestatic.terminationGracePeriodSeconds" -}}
{{- $needed := add (int .Values.preStopSleepSeconds) (int (include "servestatic.setting" (list . "gracefulTimeout"))) }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add $needed 5 }}
{{- else if le (int .Values.terminationGracePeriodSeconds) $needed }}
{{- fail (printf "terminationGracePeriodSeconds: got %d; expected more than preStopSleepSeconds + servestatic.gracefulTimeout = %d" (int .Values.terminationGracePeriodSeconds) $needed) }}
{{- else }}
{{- int .Values.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{/*
Whether a servestatic value is unset: null, "" or an empty list. Unset values render no
variable, so the image's ENV (or servestatic's default) stands. Returns "true" or "".
*/}}
{{- define "servestatic.unset" -}}
{{- if or (kindIs "invalid" .) (eq (toString .) "") (and (kindIs "slice" .) (empty .)) }}true{{ end }}
{{- end }}

{{/*
The container's environment: each servestatic value the user set, as the variable
servestatic/config/settings.py names for it. files/environment.yaml is that map, generated
from settings.py (tests check it). A value left unset renders nothing.
*/}}
{{- define "servestatic.env" -}}
{{- $s := .Values.servestatic }}
{{- range $key, $name := (.Files.Get "files/environment.yaml" | fromYaml).env }}
{{- $value := index $s $key }}
{{- if not (include "servestatic.unset" $value) }}
- name: {{ $name }}
  value: {{ include "servestatic.envValue" $value | quote }}
{{- end }}
{{- end }}
{{- if $s.headerRules }}
- name: SERVESTATIC_HEADERS_FILE
  value: /etc/servestatic/headers.toml
{{- end }}
{{- if .Values.metrics.enabled }}
- name: SERVESTATIC_METRICS_BIND
  value: {{ printf "0.0.0.0:%d" (int .Values.metrics.port) | quote }}
{{- end }}
{{- end }}

{{/*
What the chart itself must know of a setting (a probe's path, the container port, the
grace period): the value if set, else servestatic's default from files/environment.yaml,
which is not rendered as a variable. Called as (list . "healthPath"). An image that changes
one of these in its ENV needs the same value here.
*/}}
{{- define "servestatic.setting" -}}
{{- $root := index . 0 }}
{{- $key := index . 1 }}
{{- $value := index $root.Values.servestatic $key }}
{{- if include "servestatic.unset" $value }}
{{- index ($root.Files.Get "files/environment.yaml" | fromYaml).default $key }}
{{- else }}
{{- include "servestatic.envValue" $value }}
{{- end }}
{{- end }}

{{/*
The readiness probe's path: the app's own health path, asked through servestatic, when
there is one; else servestatic's readiness path (503 while there is nothing to serve).
*/}}
{{- define "servestatic.readinessPath" -}}
{{- if include "servestatic.unset" .Values.servestatic.appHealthPath }}
{{- include "servestatic.setting" (list . "readyPath") }}
{{- else }}
{{- .Values.servestatic.appHealthPath }}
{{- end }}
{{- end }}

{{/*
Refuse values that would start one worker per CPU of the node: without servestatic.workers
the worker count follows the container's CPU limit, so there must be one.
*/}}
{{- define "servestatic.checkWorkers" -}}
{{- if and (not .Values.servestatic.workers) (not (dig "limits" "cpu" "" (.Values.resources | default dict))) }}
{{- fail "servestatic.workers: got none and no resources.limits.cpu; expected one of them, else each pod starts one worker per CPU of its node" }}
{{- end }}
{{- if and .Values.metrics.enabled (eq (int .Values.metrics.port) (int (include "servestatic.setting" (list . "port")))) }}
{{- fail (printf "metrics.port: got %d, the http port; expected another port, so that the CDN never reaches /metrics" (int .Values.metrics.port)) }}
{{- end }}
{{- end }}

{{/*
One value as an environment string. Numbers arrive as float64 from YAML and JSON, and a
float prints as 3.1536e+07; whole numbers are printed as integers.
*/}}
{{- define "servestatic.envValue" -}}
{{- if or (kindIs "float64" .) (kindIs "int" .) (kindIs "int64" .) }}
{{- int64 . }}
{{- else if kindIs "slice" . }}
{{- join "," . }}
{{- else }}
{{- toString . }}
{{- end }}
{{- end }}

{{/*
The preStop handler: the kubelet's own sleep action where the cluster has it (1.30+, no
binary needed in the image), else python3, which every servestatic image has.
*/}}
{{- define "servestatic.preStop" -}}
{{- if semverCompare ">=1.30-0" .Capabilities.KubeVersion.Version }}
sleep:
  seconds: {{ int .Values.preStopSleepSeconds }}
{{- else }}
exec:
  command:
    - python3
    - -c
    - import time; time.sleep({{ int .Values.preStopSleepSeconds }})
{{- end }}
{{- end }}

{{/*
A CPU quantity ("1", 2, "1.5", "500m") in millicores; 0 when unset.
*/}}
{{- define "servestatic.millicores" -}}
{{- $text := toString (. | default "0") }}
{{- if hasSuffix "m" $text }}
{{- trimSuffix "m" $text | int }}
{{- else }}
{{- mulf (float64 $text) 1000 | int }}
{{- end }}
{{- end }}

{{/*
The HPA's CPU target is a percentage of the CPU request. A worker uses one CPU at most, so
the pod can use as many CPUs as it has workers (servestatic.workers, else the CPU limit).
A request far below that makes the target meaningless (70% of a 100m request is 70m: an
idle pod scales out), so autoscaling on CPU needs a request of at least half of it.
*/}}
{{- define "servestatic.checkAutoscaling" -}}
{{- $a := .Values.autoscaling }}
{{- if not (or $a.targetCPUUtilizationPercentage $a.targetMemoryUtilizationPercentage) }}
{{- fail "autoscaling: set targetCPUUtilizationPercentage or targetMemoryUtilizationPercentage (or both)" }}
{{- end }}
{{- if $a.targetCPUUtilizationPercentage }}
{{- $resources := .Values.resources | default dict }}
{{- $request := include "servestatic.millicores" (dig "requests" "cpu" "" $resources) | int }}
{{- $workers := mul (int (.Values.servestatic.workers | default 0)) 1000 }}
{{- $capacity := $workers | default (include "servestatic.millicores" (dig "limits" "cpu" "" $resources) | int) }}
{{- if lt (mul $request 2) $capacity }}
{{- fail (printf "resources.requests.cpu: got %dm with autoscaling on CPU; expected at least half of the %dm the pod's workers can use (one CPU each), since targetCPUUtilizationPercentage is a percentage of the request" $request $capacity) }}
{{- end }}
{{- end }}
{{- end }}

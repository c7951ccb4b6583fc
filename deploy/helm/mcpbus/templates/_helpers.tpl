{{/* Names and labels shared by every template. */}}

{{- define "mcpbus.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mcpbus.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "mcpbus.gateway" -}}
{{- printf "%s-gateway" (include "mcpbus.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mcpbus.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "mcpbus.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "mcpbus.gatewaySelector" -}}
app.kubernetes.io/name: {{ include "mcpbus.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: gateway
{{- end -}}

{{- define "mcpbus.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "mcpbus.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
JetStream names, as bus-schema defines them (bus-schema/src/topology.rs). A test in
tests/tests/chart_conventions.rs checks that these stay equal to the Rust constants.
*/}}
{{- define "mcpbus.callsStream" -}}MCPBUS_CALLS{{- end -}}
{{- define "mcpbus.poolConsumer" -}}mcpbus-pool-{{ . }}{{- end -}}

{{/* The NATS URL environment variable, from the Secret when one is named. */}}
{{- define "mcpbus.natsSecret" -}}
{{- if .Values.nats.existingSecret -}}
{{- .Values.nats.existingSecret -}}
{{- else if .Values.nats.secretUrl -}}
{{- printf "%s-nats" (include "mcpbus.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "mcpbus.natsEnv" -}}
- name: MCPBUS_NATS_URL
{{- if include "mcpbus.natsSecret" . }}
  valueFrom:
    secretKeyRef:
      name: {{ include "mcpbus.natsSecret" . }}
      key: url
{{- else }}
  value: {{ .Values.nats.url | quote }}
{{- end }}
{{- end -}}

{{/* Host names the gateway accepts: its Service's names, ingress/route hosts, extras. */}}
{{- define "mcpbus.allowedHosts" -}}
{{- $svc := include "mcpbus.gateway" . -}}
{{- $hosts := list "localhost" "127.0.0.1" $svc (printf "%s.%s" $svc .Release.Namespace) (printf "%s.%s.svc" $svc .Release.Namespace) (printf "%s.%s.svc.cluster.local" $svc .Release.Namespace) -}}
{{- if .Values.gateway.ingress.enabled -}}
{{- range .Values.gateway.ingress.hosts -}}
{{- $hosts = append $hosts .host -}}
{{- end -}}
{{- end -}}
{{- if .Values.gateway.httpRoute.enabled -}}
{{- $hosts = concat $hosts .Values.gateway.httpRoute.hostnames -}}
{{- end -}}
{{- concat $hosts .Values.gateway.allowedHosts | uniq | join "," -}}
{{- end -}}

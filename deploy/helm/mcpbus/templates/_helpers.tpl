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

{{/*
NATS credentials and TLS of one component (issue 13), from Kubernetes Secrets: files are
mounted read-only under /etc/mcpbus/nats and named by the MCPBUS_NATS_* variables; a password
or token goes into the environment by secretKeyRef, never into a value or a ConfigMap.
Called with (dict "auth" <component natsAuth> "tls" .Values.nats.tls "what" <name>).
*/}}
{{- define "mcpbus.natsAuthCheck" -}}
{{- $a := .auth | default dict -}}
{{- $ways := 0 -}}
{{- range $k := list "credsSecret" "nkeySecret" "passwordSecret" "tokenSecret" -}}
{{- if get $a $k }}{{ $ways = add1 $ways }}{{ end -}}
{{- end -}}
{{- if gt $ways 1 -}}
{{- fail (printf "%s.natsAuth: set one of credsSecret, nkeySecret, passwordSecret (with user), tokenSecret" .what) -}}
{{- end -}}
{{- if and $a.passwordSecret (not $a.user) -}}
{{- fail (printf "%s.natsAuth.passwordSecret needs user" .what) -}}
{{- end -}}
{{- if and $a.user (not $a.passwordSecret) -}}
{{- fail (printf "%s.natsAuth.user needs passwordSecret" .what) -}}
{{- end -}}
{{- end -}}

{{- define "mcpbus.natsAuthEnv" -}}
{{- include "mcpbus.natsAuthCheck" . -}}
{{- $a := .auth | default dict -}}
{{- with $a.credsSecret }}
- name: MCPBUS_NATS_CREDS
  value: /etc/mcpbus/nats/creds/creds
{{- end }}
{{- with $a.nkeySecret }}
- name: MCPBUS_NATS_NKEY
  value: /etc/mcpbus/nats/nkey/seed
{{- end }}
{{- if $a.passwordSecret }}
- name: MCPBUS_NATS_USER
  value: {{ $a.user | quote }}
- name: MCPBUS_NATS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $a.passwordSecret }}
      key: password
{{- end }}
{{- with $a.tokenSecret }}
- name: MCPBUS_NATS_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: token
{{- end }}
{{- with .tls }}
{{- if .secret }}
- name: MCPBUS_NATS_TLS_CA
  value: /etc/mcpbus/nats/tls/ca.crt
{{- if .clientCertificate }}
- name: MCPBUS_NATS_TLS_CERT
  value: /etc/mcpbus/nats/tls/tls.crt
- name: MCPBUS_NATS_TLS_KEY
  value: /etc/mcpbus/nats/tls/tls.key
{{- end }}
{{- end }}
{{- if .handshakeFirst }}
- name: MCPBUS_NATS_TLS_FIRST
  value: "true"
{{- end }}
{{- end }}
{{- end -}}

{{/* The volumes those files come from, and where they are mounted (list items). */}}
{{- define "mcpbus.natsVolumes" -}}
{{- $a := .auth | default dict -}}
{{- with $a.credsSecret }}
- name: nats-creds
  secret:
    secretName: {{ . }}
    defaultMode: 0440
    items: [{key: creds, path: creds}]
{{- end }}
{{- with $a.nkeySecret }}
- name: nats-nkey
  secret:
    secretName: {{ . }}
    defaultMode: 0440
    items: [{key: seed, path: seed}]
{{- end }}
{{- with .tls.secret }}
- name: nats-tls
  secret:
    secretName: {{ . }}
    defaultMode: 0440
{{- end }}
{{- end -}}

{{- define "mcpbus.natsVolumeMounts" -}}
{{- $a := .auth | default dict -}}
{{- if $a.credsSecret }}
- name: nats-creds
  mountPath: /etc/mcpbus/nats/creds
  readOnly: true
{{- end }}
{{- if $a.nkeySecret }}
- name: nats-nkey
  mountPath: /etc/mcpbus/nats/nkey
  readOnly: true
{{- end }}
{{- if .tls.secret }}
- name: nats-tls
  mountPath: /etc/mcpbus/nats/tls
  readOnly: true
{{- end }}
{{- end -}}

{{/*
A PromQL selector for the alerts: the release's matchers (monitoring.prometheusRule.selector,
default namespace="<release namespace>") plus the extra ones given.
Called with (list $ `extra matcher`...).
*/}}
{{- define "mcpbus.ruleSelector" -}}
{{- $root := first . -}}
{{- $base := $root.Values.monitoring.prometheusRule.selector | default (printf "namespace=%q" $root.Release.Namespace) -}}
{{- $matchers := prepend (rest .) $base | compact -}}
{ {{- join "," $matchers -}} }
{{- end -}}

# mcpbus-gateway image. Build from the repository root:
#   docker build -f deploy/gateway.Dockerfile -t mcpbus-gateway .
# Build stage: the Rust toolchain comes with the base image; only crates are downloaded
# (from crates.io, pinned by Cargo.lock).
FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p mcpbus-gateway \
    && install -D -m 0755 target/release/mcpbus-gateway /out/mcpbus-gateway

# Runtime: distroless (glibc, CA certificates, no shell, no package manager), non-root.
# The binary writes nothing to disk, so the root filesystem can be mounted read-only.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/mcpbus-gateway /usr/local/bin/mcpbus-gateway
USER 65532:65532
EXPOSE 8080 9464
# Beyond loopback the gateway needs an auth choice (ADR 0009), which the image does not make:
# set MCPBUS_AUTH_ISSUERS and MCPBUS_AUTH_AUDIENCE, or MCPBUS_AUTH=none behind something that
# authenticates (the chart and k8s/ set one). Metrics are on their own port for Prometheus.
ENV MCPBUS_LISTEN=0.0.0.0:8080 MCPBUS_METRICS_LISTEN=0.0.0.0:9464
ENTRYPOINT ["/usr/local/bin/mcpbus-gateway"]

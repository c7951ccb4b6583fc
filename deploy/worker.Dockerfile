# mcpbus-worker image (the binary of worker/cli: demo tools, conformance fixtures, bridges). Build from the
# repository root:
#   docker build -f deploy/worker.Dockerfile -t mcpbus-worker .
FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p mcpbus-worker \
    && install -D -m 0755 target/release/mcpbus-worker /out/mcpbus-worker

# Runtime: distroless, non-root, nothing written to disk (read-only root filesystem).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/mcpbus-worker /usr/local/bin/mcpbus-worker
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/mcpbus-worker"]

# syntax=docker/dockerfile:1

# omnigate image: one static binary on distroless, running as a non-root user.
#
#   docker build -t omnigate .
#   docker run --rm -p 8080:8080 -v omnigate-data:/data omnigate
#
# With no configuration, `omnigate serve` runs an embedded NATS server whose
# JetStream data lives in data_dir, which is /data here (a volume). With
# OMNIGATE_NATS_URL and OMNIGATE_STORE_REDIS_URL set, it joins an external NATS
# cluster and Redis instead (see docker-compose.yml and deploy/README.md).

# The build stage runs on the build machine's platform and cross-compiles, so
# multi-platform builds (docker buildx --platform ...) need no emulation.
FROM --platform=$BUILDPLATFORM golang:1.26-bookworm AS build
WORKDIR /src

# Modules first, in their own layer: it is rebuilt only when go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download && go mod verify

COPY . .
ARG TARGETOS
ARG TARGETARCH
RUN --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w" -o /out/omnigate ./cmd/omnigate

# The data directory is created here because the final image has no shell.
RUN mkdir -p /out/data

# distroless/static has CA certificates, tzdata and /etc/passwd with the nonroot
# user (65532), and nothing else: no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot

COPY --from=build /out/omnigate /omnigate
# Owned by nonroot so that a fresh volume mounted on /data is writable.
COPY --from=build --chown=65532:65532 /out/data /data

USER 65532:65532
WORKDIR /
# Local state (the embedded NATS server's JetStream store) goes to the volume.
ENV OMNIGATE_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8080

ENTRYPOINT ["/omnigate"]
CMD ["serve"]

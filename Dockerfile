# syntax=docker/dockerfile:1
# The velox binary in a small image. It runs "velox serve" by default;
# docker-compose.yml also runs "velox proxy" from it.
#
#   docker build -t velox .
#   docker run -p 8080:8080 -v velox-data:/var/lib/velox velox
#                                        # embedded defaults: SQLite and blobs in /var/lib/velox

FROM golang:1.26-bookworm AS build
WORKDIR /src
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
# CGO_ENABLED=0: SQLite is pure Go (modernc.org/sqlite), so the binary is
# static and runs on any base image.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/velox ./cmd/velox

FROM alpine:3.22
# ca-certificates for https/ldaps to servers with public certificates;
# busybox's wget answers the health checks.
RUN apk add --no-cache ca-certificates \
 && addgroup -S -g 10001 velox \
 && adduser -S -D -H -u 10001 -G velox -h /var/lib/velox velox \
 && mkdir -p /var/lib/velox /etc/velox/tls \
 && chown velox:velox /var/lib/velox /etc/velox/tls
COPY --from=build /out/velox /usr/local/bin/velox
USER velox
WORKDIR /var/lib/velox
# Listen on every interface: inside a container 127.0.0.1 is unreachable.
ENV VELOX_LISTEN=:8080 \
    VELOX_DATA=/var/lib/velox
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/velox"]
CMD ["serve"]

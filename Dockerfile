# syntax=docker/dockerfile:1
# One image for every node. go-nvml needs cgo; NVML itself is loaded at run
# time from the host driver (nvidia-container-toolkit), and ragnode falls
# back to --gpus when it is absent.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 CGO_CFLAGS=-Wno-deprecated-declarations go build -trimpath -ldflags="-s -w" -o /out/ragnode .

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /var/lib/ragnode --create-home ragnode
COPY --from=build /out/ragnode /usr/local/bin/ragnode
USER ragnode
WORKDIR /var/lib/ragnode
VOLUME /var/lib/ragnode
# HTTP API, Raft, Serf (TCP and UDP)
EXPOSE 7070 7071 7072 7072/udp
ENV RAGNODE_DATA_DIR=/var/lib/ragnode RAGNODE_BIND=0.0.0.0
ENTRYPOINT ["ragnode"]
CMD ["start"]
